"""From what the runtime observed of a pod's containers to the pod status the API should show.

Pure functions, so the kubelet's rules — which phase a mix of container states means, when the
pod is Initialized or Ready, how a terminated container is reported — are unit-tested without a
cluster, and one place decides the phase. The phase rules follow the kubelet's `getPhase`
(pkg/kubelet/kubelet_pods.go) for regular init containers and containers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Running:
    started_at: dt.datetime
    pid: int


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    message: str
    finished_at: dt.datetime
    started_at: dt.datetime | None = None
    pid: int | None = None

    @staticmethod
    def exited(
        exit_code: int, message: str, started_at: dt.datetime, finished_at: dt.datetime, pid: int
    ) -> Terminated:
        reason = "Completed" if exit_code == 0 else "Error"
        return Terminated(exit_code, reason, message, finished_at, started_at, pid)

    @staticmethod
    def lost(now: dt.datetime, started_at: dt.datetime | None = None) -> Terminated:
        """A container whose process the kubelet cannot account for (as the kubelet words it)."""
        return Terminated(
            137,
            "ContainerStatusUnknown",
            "The container could not be located when the pod was terminated",
            now,
            started_at,
        )


ContainerState = Waiting | Running | Terminated


@dataclass
class ContainerRecord:
    """The runtime's view of one container across its restarts."""

    name: str
    state: ContainerState = field(default_factory=lambda: Waiting("ContainerCreating"))
    last_terminated: Terminated | None = None
    restart_count: int = 0

    @property
    def succeeded(self) -> bool:
        return isinstance(self.state, Terminated) and self.state.exit_code == 0

    @property
    def ever_started(self) -> bool:
        return not isinstance(self.state, Waiting) or self.last_terminated is not None


@dataclass
class PodRecord:
    init_containers: list[ContainerRecord]
    containers: list[ContainerRecord]
    start_time: dt.datetime | None = None
    # A pod-level failure that overrides the containers' verdict (reason, message).
    failure: tuple[str, str] | None = None
    # Set once the pod is being stopped for good (deletion, deadline): nothing restarts.
    terminating: bool = False

    @staticmethod
    def for_pod(pod: Obj) -> PodRecord:
        spec = pod["spec"]
        init = spec.get("initContainers") or []
        # As the kubelet words it: containers wait for the init containers, if there are any.
        first = Waiting("PodInitializing" if init else "ContainerCreating")
        return PodRecord(
            init_containers=[ContainerRecord(c["name"]) for c in init],
            containers=[ContainerRecord(c["name"], first) for c in spec["containers"]],
        )


def restart_policy(pod: Obj) -> str:
    return str(pod["spec"].get("restartPolicy", "Always"))


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def pod_phase(pod: Obj, record: PodRecord) -> str:
    policy = restart_policy(pod)
    if record.failure is not None:
        return FAILED
    for init in record.init_containers:
        if init.succeeded:
            continue
        failed = isinstance(init.state, Terminated) or init.last_terminated is not None
        if record.terminating or (failed and policy == "Never"):
            return FAILED
        return PENDING  # still running, not started yet, or about to be retried

    running = waiting = stopped = succeeded = 0
    for container in record.containers:
        state = container.state
        if isinstance(state, Running):
            running += 1
        elif isinstance(state, Terminated):
            stopped += 1
            succeeded += state.exit_code == 0
        elif container.last_terminated is not None:
            stopped += 1  # waiting to restart
        else:
            waiting += 1
    if waiting:
        return FAILED if record.terminating else PENDING
    if running:
        return RUNNING
    if record.terminating:
        return SUCCEEDED if stopped == succeeded else FAILED
    if policy == "Always":
        return RUNNING
    if stopped == succeeded:
        return SUCCEEDED
    return FAILED if policy == "Never" else RUNNING


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminated(state: Terminated, container_id: str | None) -> Obj:
    reported: Obj = {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "startedAt": _time(state.started_at),
        "finishedAt": _time(state.finished_at),
        "containerID": container_id,
    }
    if state.message:
        reported["message"] = state.message
    return reported


def _container_id(pid: int | None) -> str | None:
    return None if pid is None else f"process://{pid}"


def _state(state: ContainerState) -> Obj:
    """All three keys, absent ones null, so a merge patch replaces the previous state."""
    reported: Obj = {"waiting": None, "running": None, "terminated": None}
    if isinstance(state, Waiting):
        reported["waiting"] = {"reason": state.reason, "message": state.message or None}
    elif isinstance(state, Running):
        reported["running"] = {"startedAt": _time(state.started_at)}
    else:
        reported["terminated"] = _terminated(state, _container_id(state.pid))
    return reported


def container_status(spec: Obj, record: ContainerRecord) -> Obj:
    state = record.state
    pid = state.pid if isinstance(state, Running | Terminated) else None
    if pid is None and record.last_terminated is not None:
        pid = record.last_terminated.pid
    last: Obj = {"waiting": None, "running": None, "terminated": None}
    if record.last_terminated is not None:
        last = _state(record.last_terminated)
    running = isinstance(state, Running)
    image = spec.get("image", "")
    return {
        "name": record.name,
        "image": image,
        "imageID": image,
        "containerID": _container_id(pid),
        "state": _state(state),
        "lastState": last,
        "ready": running,
        "started": running,
        "restartCount": record.restart_count,
    }


def _condition(
    kind: str,
    ok: bool,
    previous: Sequence[Obj],
    now: dt.datetime,
    reason: str | None = None,
    message: str | None = None,
) -> Obj:
    status = "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        since = before["lastTransitionTime"]
    else:
        since = _time(now)
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
        "reason": None if ok else reason,
        "message": None if ok else message,
    }


def _names(records: Sequence[ContainerRecord]) -> str:
    return "[" + " ".join(r.name for r in records) + "]"


def conditions(pod: Obj, record: PodRecord, phase: str, now: dt.datetime) -> list[Obj]:
    previous = (pod.get("status") or {}).get("conditions") or []
    incomplete = [r for r in record.init_containers if not r.succeeded]
    unready = [r for r in record.containers if not isinstance(r.state, Running)]
    if phase == SUCCEEDED:
        not_ready_reason, not_ready_message = "PodCompleted", None
    else:
        not_ready_reason = "ContainersNotReady"
        not_ready_message = f"containers with unready status: {_names(unready)}"
    return [
        _condition("PodScheduled", True, previous, now),
        _condition(
            "Initialized",
            not incomplete,
            previous,
            now,
            "ContainersNotInitialized",
            f"containers with incomplete status: {_names(incomplete)}",
        ),
        _condition(
            "ContainersReady", not unready, previous, now, not_ready_reason, not_ready_message
        ),
        _condition("Ready", not unready, previous, now, not_ready_reason, not_ready_message),
    ]


def pod_status(pod: Obj, record: PodRecord, *, host_ip: str, now: dt.datetime) -> Obj:
    """The full `status` the kubelet reports for `pod` (sent as a strategic merge patch)."""
    spec = pod["spec"]
    phase = pod_phase(pod, record)
    status: Obj = {
        "phase": phase,
        "conditions": conditions(pod, record, phase, now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": host_ip,
        "podIPs": [{"ip": host_ip}],
        "startTime": _time(record.start_time),
        "containerStatuses": [
            container_status(c, r)
            for c, r in zip(spec["containers"], record.containers, strict=True)
        ],
    }
    if record.init_containers:
        status["initContainerStatuses"] = [
            container_status(c, r)
            for c, r in zip(spec["initContainers"], record.init_containers, strict=True)
        ]
    if record.failure is not None:
        status["reason"], status["message"] = record.failure
    generation = pod["metadata"].get("generation")
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def _parse_time(value: str | None) -> dt.datetime | None:
    return None if not value else dt.datetime.fromisoformat(value)


def _recovered(status: Obj | None, name: str, now: dt.datetime) -> ContainerRecord:
    """What a previous kubelet reported, with anything not finished turned into a lost run."""
    status = status or {}
    record = ContainerRecord(name, restart_count=int(status.get("restartCount") or 0))
    terminated = (status.get("state") or {}).get("terminated")
    if terminated:
        container_id = str(terminated.get("containerID") or status.get("containerID") or "")
        pid = container_id.removeprefix("process://")
        record.state = Terminated(
            int(terminated.get("exitCode", 0)),
            str(terminated.get("reason") or ""),
            str(terminated.get("message") or ""),
            _parse_time(terminated.get("finishedAt")) or now,
            _parse_time(terminated.get("startedAt")),
            int(pid) if pid.isdigit() else None,
        )
    else:
        running = (status.get("state") or {}).get("running") or {}
        record.state = Terminated.lost(now, _parse_time(running.get("startedAt")))
    return record


def recovered_record(pod: Obj, failure: tuple[str, str], now: dt.datetime) -> PodRecord:
    """A failed record for a pod whose processes an earlier kubelet run started and lost."""
    spec, status = pod["spec"], pod.get("status") or {}

    def by_name(key: str) -> dict[str, Obj]:
        return {s["name"]: s for s in status.get(key) or []}

    init_statuses, statuses = by_name("initContainerStatuses"), by_name("containerStatuses")
    return PodRecord(
        init_containers=[
            _recovered(init_statuses.get(c["name"]), c["name"], now)
            for c in spec.get("initContainers") or []
        ],
        containers=[
            _recovered(statuses.get(c["name"]), c["name"], now) for c in spec["containers"]
        ],
        start_time=_parse_time(status.get("startTime")) or now,
        failure=failure,
        terminating=True,
    )
