"""One pod's life on this node: from bound to deleted.

A worker owns its pod's processes. Each pass of its loop starts whatever is due (the next init
container, the containers, a restart whose back-off has passed), reports the status if it
changed, then sleeps until something happens: a process exits, the pod changes (deletion), or a
timer (back-off, retry, `activeDeadlineSeconds`) fires. Once the pod is terminal it waits for the
deletion, then deletes the pod for good (grace period 0), as a kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from genvid_devstack.kubelet import envvars, podstatus
from genvid_devstack.kubelet.kube import Obj
from genvid_devstack.kubelet.podstatus import (
    ContainerRecord,
    PodRecord,
    Running,
    Terminated,
    Waiting,
)
from genvid_devstack.kubelet.runtime import ContainerLaunch, ContainerProcess, Runtime, StartError

log = logging.getLogger(__name__)

GRACE_CAP_SECONDS = 30.0  # longer grace periods are shortened: this is a development stack
SHUTDOWN_GRACE_SECONDS = 3.0  # when the kubelet itself stops
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 10.0
CONFIG_RETRY_SECONDS = 2.0
API_RETRY_SECONDS = 1.0

LOST_REASON = "KubeletRestarted"
LOST_MESSAGE = (
    "the process kubelet restarted while this pod ran; its processes are gone and cannot be "
    "re-attached, so the pod is failed rather than run a second time"
)
DEADLINE_REASON = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"


class PodGone(Exception):
    """The pod no longer exists in the API: nothing left to report."""


class PodApi(Protocol):
    """What a pod worker needs from the API, with the node's identity."""

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None: ...

    async def patch_status(self, pod: Obj, status: Obj) -> None: ...

    async def delete(self, pod: Obj) -> None: ...


@dataclass(frozen=True)
class WorkerSettings:
    host_ip: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def backoff(restart_count: int) -> float:
    return float(min(BACKOFF_FIRST_SECONDS * 2**restart_count, BACKOFF_MAX_SECONDS))


class PodWorker:
    def __init__(self, pod: Obj, *, api: PodApi, runtime: Runtime, settings: WorkerSettings):
        self.pod = pod
        meta = pod["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.dir = runtime.pod_dir(self.namespace, self.name, self.uid)
        self.record = PodRecord.for_pod(pod)
        self._api = api
        self._runtime = runtime
        self._settings = settings
        self._processes: dict[str, ContainerProcess] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._due: dict[str, float] = {}  # container → loop time of its next start attempt
        self._wake = asyncio.Event()
        self._reported: Obj | None = None

    # -- what the agent and the log server see ------------------------------------------------

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self._wake.set()

    def log_path(self, container: str) -> Path:
        return self.dir / f"{container}.log"

    def is_running(self, container: str) -> bool:
        return container in self._processes

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            phase = (self.pod.get("status") or {}).get("phase")
            if phase in podstatus.TERMINAL_PHASES:
                pass  # finished before this kubelet started: only the deletion is left to do
            elif self.dir.exists():
                self.record = podstatus.recovered_record(
                    self.pod, (LOST_REASON, LOST_MESSAGE), _now()
                )
                log.warning("%s/%s: processes lost in a kubelet restart", self.namespace, self.name)
                await self._report()
            else:
                await self._live()
            await self._delete_when_asked()
        except PodGone:
            pass
        finally:
            # Cancelled (pod gone, kubelet stopping) with processes still running: end them.
            await self._stop_processes(SHUTDOWN_GRACE_SECONDS)

    async def _live(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.record.start_time = _now()
        while True:
            if self.deleting:
                grace = self.pod["metadata"].get("deletionGracePeriodSeconds") or 0
                await self._terminate(float(grace))
            elif self._deadline_in() == 0:
                self.record.failure = (DEADLINE_REASON, DEADLINE_MESSAGE)
                grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
                await self._terminate(float(grace))
            timer = None if self.record.terminating else await self._start_due()
            await self._report()
            if podstatus.pod_phase(self.pod, self.record) in podstatus.TERMINAL_PHASES:
                return
            deadline = self._deadline_in()
            timers = [t for t in (timer, deadline) if t is not None]
            await self._sleep(min(timers) if timers else None)

    async def _delete_when_asked(self) -> None:
        while not self.deleting:
            await self._sleep(None)
        while True:
            try:
                await self._api.delete(self.pod)
                return
            except (ApiException, aiohttp.ClientError, TimeoutError) as error:
                if isinstance(error, ApiException) and error.status in (404, 409):
                    return  # gone already, or the name is a new pod's now
                log.warning("deleting %s/%s failed, retrying: %s", self.namespace, self.name, error)
                await asyncio.sleep(API_RETRY_SECONDS)

    async def _sleep(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _deadline_in(self) -> float | None:
        seconds = self.pod["spec"].get("activeDeadlineSeconds")
        if seconds is None or self.record.start_time is None:
            return None
        left = (self.record.start_time - _now()).total_seconds() + float(seconds)
        return max(left, 0.0)

    # -- starting containers -------------------------------------------------------------------

    def _due_now(self) -> list[tuple[Obj, ContainerRecord]]:
        """The next init container that needs starting, or once they all succeeded, the rest."""
        spec = self.pod["spec"]
        for container, record in zip(
            spec.get("initContainers") or [], self.record.init_containers, strict=True
        ):
            if record.succeeded:
                continue
            return [(container, record)] if isinstance(record.state, Waiting) else []
        return [
            (container, record)
            for container, record in zip(spec["containers"], self.record.containers, strict=True)
            if isinstance(record.state, Waiting)
        ]

    async def _start_due(self) -> float | None:
        """Start what is due; the seconds until the next start attempt, if one is waiting."""
        loop_now = asyncio.get_running_loop().time()
        timer: float | None = None
        for container, record in self._due_now():
            wait = self._due.get(record.name, loop_now) - loop_now
            if wait > 0:
                timer = wait if timer is None else min(timer, wait)
                continue
            self._due.pop(record.name, None)
            await self._start(container, record)
            if record.name in self._due:
                retry = self._due[record.name] - loop_now
                timer = retry if timer is None else min(timer, retry)
        return timer

    async def _launch(self, container: Obj) -> ContainerLaunch:
        """Resolve the container's environment and command line; EnvError if not possible yet."""
        refs = envvars.referenced_objects(container)
        sources: dict[str, dict[str, dict[str, str] | None]] = {"Secret": {}, "ConfigMap": {}}
        for kind, names in (("Secret", refs.secrets), ("ConfigMap", refs.config_maps)):
            for name in names:
                try:
                    sources[kind][name] = await self._api.data(kind, self.namespace, name)
                except (ApiException, aiohttp.ClientError, TimeoutError) as error:
                    # 403 too: the Node authorizer learns about a new pod's references shortly
                    # after it is bound.
                    reason = getattr(error, "reason", None) or error
                    raise envvars.EnvError(f'{kind.lower()} "{name}": {reason}') from error
        env = envvars.container_env(
            self.pod,
            container,
            secrets=sources["Secret"],
            config_maps=sources["ConfigMap"],
            pod_ip=self._settings.host_ip,
        )
        return ContainerLaunch(
            name=container["name"],
            argv=envvars.command_line(container, env),
            env={**self._runtime.base_env(hostname=self.name), **env},
            working_dir=Path(container.get("workingDir") or self.dir),
            termination_message_path=container.get(
                "terminationMessagePath", DEFAULT_TERMINATION_MESSAGE_PATH
            ),
        )

    async def _start(self, container: Obj, record: ContainerRecord) -> None:
        name = record.name
        try:
            launch = await self._launch(container)
        except envvars.EnvError as error:
            record.state = Waiting(error.reason, str(error))
            self._due[name] = asyncio.get_running_loop().time() + CONFIG_RETRY_SECONDS
            return
        except envvars.CommandRequired as error:
            self._exited(container, record, _start_failure(error))
            return
        if record.ever_started:
            record.restart_count += 1
        try:
            process = self._runtime.start(self.dir, launch)
        except StartError as error:
            self._exited(container, record, _start_failure(error))
            return
        record.state = Running(process.started_at, process.pid)
        self._processes[name] = process
        self._watchers[name] = asyncio.create_task(self._watch(container, record, process))

    async def _watch(
        self, container: Obj, record: ContainerRecord, process: ContainerProcess
    ) -> None:
        code = await process.wait()
        fallback = container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        message = process.termination_message(fallback_to_logs=fallback)
        del self._processes[record.name]
        terminated = Terminated.exited(code, message, process.started_at, _now(), process.pid)
        log.info("%s/%s: container %s exited with %d", self.namespace, self.name, record.name, code)
        self._exited(container, record, terminated)
        self._wake.set()

    def _exited(self, container: Obj, record: ContainerRecord, terminated: Terminated) -> None:
        """Record an exit, and schedule the restart the pod's restartPolicy asks for."""
        record.state = terminated
        policy = podstatus.restart_policy(self.pod)
        is_init = any(record is init for init in self.record.init_containers)
        restart = (
            terminated.exit_code != 0 and policy != "Never"
            if is_init
            else podstatus.should_restart(policy, terminated.exit_code)
        )
        if not restart or self.record.terminating:
            return
        delay = backoff(record.restart_count)
        record.last_terminated = terminated
        record.state = Waiting(
            "CrashLoopBackOff",
            f"back-off {delay:g}s restarting failed container={record.name} "
            f"pod={self.name}_{self.namespace}({self.uid})",
        )
        self._due[record.name] = asyncio.get_running_loop().time() + delay

    # -- stopping ------------------------------------------------------------------------------

    async def _terminate(self, grace: float) -> None:
        """Stop for good: SIGTERM, SIGKILL after the (capped) grace period; nothing restarts."""
        self.record.terminating = True
        await self._stop_processes(min(grace, GRACE_CAP_SECONDS))
        now = _now()
        for record in [*self.record.init_containers, *self.record.containers]:
            if isinstance(record.state, Waiting):
                record.state = record.last_terminated or Terminated.lost(now)

    async def _stop_processes(self, grace: float) -> None:
        self.record.terminating = True
        processes = list(self._processes.values())
        await asyncio.gather(*(p.stop(grace) for p in processes), return_exceptions=True)
        # The watchers record the exits (exit codes, termination messages).
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)

    # -- reporting -----------------------------------------------------------------------------

    async def _report(self) -> None:
        """Patch the status until the last one reported is the pod's current one.

        A container can exit while a patch is on its way (a process done in milliseconds): the
        status sent was computed before that exit, so it is computed again after every patch,
        or the pod's final status would never be reported.
        """
        while True:
            status = podstatus.pod_status(
                self.pod, self.record, host_ip=self._settings.host_ip, now=_now()
            )
            if status == self._reported:
                return
            await self._patch(status)
            self._reported = status

    async def _patch(self, status: Obj) -> None:
        while True:
            try:
                await self._api.patch_status(self.pod, status)
                return
            except (ApiException, aiohttp.ClientError, TimeoutError) as error:
                if isinstance(error, ApiException) and error.status in (404, 409):
                    raise PodGone from error  # 409: the uid precondition: a new pod, same name
                log.warning(
                    "status of %s/%s not reported, retrying: %s", self.namespace, self.name, error
                )
                await asyncio.sleep(API_RETRY_SECONDS)


def _start_failure(error: Exception) -> Terminated:
    """As a runtime reports a container it could not start: exit code 128, StartError."""
    return Terminated(128, "StartError", str(error), _now())
