"""The process kubelet's rules, without a cluster: environment, status, binding, processes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from genvid_devstack.kubelet import binder, envvars, kube, node, podstatus, podworker
from genvid_devstack.kubelet.podstatus import (
    ContainerRecord,
    PodRecord,
    Running,
    Terminated,
    Waiting,
)
from genvid_devstack.kubelet.runtime import (
    ContainerLaunch,
    MountPoints,
    Runtime,
    StartError,
    mounted_anywhere,
)

Obj = dict[str, Any]
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def a_pod(*containers: Obj, init: list[Obj] | None = None, **spec: Any) -> Obj:
    pod_spec: Obj = {"nodeName": "genvid-node", "serviceAccountName": "default", **spec}
    pod_spec["containers"] = list(containers) or [{"name": "main", "image": "img:1"}]
    if init:
        pod_spec["initContainers"] = init
    return {
        "metadata": {
            "name": "render-x",
            "namespace": "videos",
            "uid": "uid-1",
            "labels": {"app": "genvid"},
            "annotations": {"note": "hi"},
            "generation": 1,
        },
        "spec": pod_spec,
    }


# -- $(VAR) expansion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "a"),
        ("x-$(A)-$(B)", "x-a-b"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$a"),
        ("$A", "$A"),
        ("$", "$"),
        ("a$", "a$"),
        ("$(A", "$(A"),
        ("$()", "$()"),
        ("no refs", "no refs"),
    ],
)
def test_expand_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert envvars.expand(text, {"A": "a", "B": "b"}.get) == expected


# -- environment ------------------------------------------------------------------------------


def test_env_precedence_expansion_and_sources() -> None:
    container = {
        "name": "main",
        "envFrom": [
            {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
            {"secretRef": {"name": "creds"}},
        ],
        "env": [
            {"name": "token", "value": "overridden by env"},
            {"name": "URL", "value": "veo://$(CFG_model)/$(LATER)"},
            {"name": "LATER", "value": "x"},
            {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
    }
    env = envvars.container_env(
        a_pod(container),
        container,
        secrets={"creds": {"token": "s3cret", "user": "ann", "bad=key": "skipped"}},
        config_maps={"settings": {"model": "veo-3"}},
        pod_ip="127.0.0.1",
    )
    assert env == {
        "CFG_model": "veo-3",
        "token": "overridden by env",
        "user": "ann",
        "URL": "veo://veo-3/$(LATER)",
        "LATER": "x",
        "USER": "ann",
        "POD": "render-x",
        "NS": "videos",
        "UID": "uid-1",
        "APP": "genvid",
        "NODE": "genvid-node",
        "SA": "default",
        "IP": "127.0.0.1",
    }


def test_optional_references_are_skipped_when_absent() -> None:
    container = {
        "name": "main",
        "envFrom": [{"secretRef": {"name": "absent", "optional": True}}],
        "env": [
            {
                "name": "A",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
            },
            {
                "name": "B",
                "valueFrom": {
                    "configMapKeyRef": {"name": "settings", "key": "nope", "optional": True}
                },
            },
        ],
    }
    env = envvars.container_env(
        a_pod(container),
        container,
        secrets={"absent": None},
        config_maps={"settings": {"model": "veo-3"}},
        pod_ip="127.0.0.1",
    )
    assert env == {}


@pytest.mark.parametrize(
    ("var", "message"),
    [
        ({"secretKeyRef": {"name": "absent", "key": "k"}}, 'secret "absent" not found'),
        (
            {"configMapKeyRef": {"name": "settings", "key": "nope"}},
            "couldn't find key nope in ConfigMap videos/settings",
        ),
        ({"resourceFieldRef": {"resource": "limits.cpu"}}, "not supported"),
    ],
)
def test_required_references_that_cannot_resolve_are_config_errors(var: Obj, message: str) -> None:
    container = {"name": "main", "env": [{"name": "A", "valueFrom": var}]}
    with pytest.raises(envvars.EnvError, match=message) as raised:
        envvars.container_env(
            a_pod(container),
            container,
            secrets={"absent": None},
            config_maps={"settings": {"model": "veo-3"}},
            pod_ip="127.0.0.1",
        )
    assert raised.value.reason == "CreateContainerConfigError"


def test_referenced_objects_and_secret_decoding() -> None:
    container = {
        "name": "main",
        "envFrom": [{"secretRef": {"name": "s1"}}, {"configMapRef": {"name": "c1"}}],
        "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c2", "key": "k"}}},
            {"name": "C", "value": "plain"},
        ],
    }
    refs = envvars.referenced_objects(container)
    assert refs.secrets == {"s1", "s2"}
    assert refs.config_maps == {"c1", "c2"}
    assert envvars.secret_strings({"k": base64.b64encode(b"v\xc3\xa9").decode()}) == {"k": "vé"}


def test_command_line_expands_and_requires_a_command() -> None:
    container = {"name": "main", "command": ["python", "-m", "$(MOD)"], "args": ["--id=$(ID)"]}
    assert envvars.command_line(container, {"MOD": "genvid_worker", "ID": "7"}) == [
        "python",
        "-m",
        "genvid_worker",
        "--id=7",
    ]
    with pytest.raises(envvars.CommandRequired, match="explicit command"):
        envvars.command_line({"name": "main", "args": ["x"]}, {})


# -- pod phase and status -----------------------------------------------------------------------


def done(code: int) -> Terminated:
    return Terminated.exited(code, "", NOW, NOW, pid=42)


def record(
    *states: podstatus.ContainerState, init: list[ContainerRecord] | None = None
) -> PodRecord:
    return PodRecord(
        init_containers=init or [],
        containers=[ContainerRecord(f"c{i}", state) for i, state in enumerate(states)],
        start_time=NOW,
    )


def pod_for(rec: PodRecord, policy: str = "Never") -> Obj:
    containers = [{"name": c.name, "image": "img:1"} for c in rec.containers]
    init = [{"name": c.name, "image": "img:1"} for c in rec.init_containers]
    return a_pod(*containers, init=init, restartPolicy=policy)


@pytest.mark.parametrize(
    ("states", "policy", "phase"),
    [
        ((Waiting("ContainerCreating"),), "Never", "Pending"),
        ((Running(NOW, 1),), "Never", "Running"),
        ((Running(NOW, 1), done(0)), "Never", "Running"),
        ((done(0), done(0)), "Never", "Succeeded"),
        ((done(0), done(1)), "Never", "Failed"),
        ((done(1),), "OnFailure", "Running"),  # about to restart
        ((done(0),), "OnFailure", "Succeeded"),
        ((done(0),), "Always", "Running"),
    ],
)
def test_phase_from_container_states(
    states: tuple[podstatus.ContainerState, ...], policy: str, phase: str
) -> None:
    rec = record(*states)
    assert podstatus.pod_phase(pod_for(rec, policy), rec) == phase


def test_a_container_waiting_to_restart_keeps_the_pod_running() -> None:
    rec = record(Waiting("CrashLoopBackOff"))
    rec.containers[0].last_terminated = done(1)
    assert podstatus.pod_phase(pod_for(rec, "OnFailure"), rec) == "Running"


def test_init_containers_gate_the_pod() -> None:
    running_init = record(Waiting("PodInitializing"), init=[ContainerRecord("i", Running(NOW, 1))])
    assert podstatus.pod_phase(pod_for(running_init), running_init) == "Pending"
    failed_init = record(Waiting("PodInitializing"), init=[ContainerRecord("i", done(1))])
    assert podstatus.pod_phase(pod_for(failed_init, "Never"), failed_init) == "Failed"
    assert podstatus.pod_phase(pod_for(failed_init, "OnFailure"), failed_init) == "Pending"


def test_terminating_pods_end_terminal_and_pod_failures_win() -> None:
    rec = record(done(0), done(143))
    rec.terminating = True
    assert podstatus.pod_phase(pod_for(rec, "Always"), rec) == "Failed"
    rec = record(done(0))
    rec.terminating = True
    assert podstatus.pod_phase(pod_for(rec, "Always"), rec) == "Succeeded"
    rec = record(Running(NOW, 1))
    rec.failure = ("DeadlineExceeded", "too long")
    assert podstatus.pod_phase(pod_for(rec), rec) == "Failed"


def test_status_of_a_completed_pod() -> None:
    rec = record(Terminated.exited(0, '{"ok": true}', NOW, NOW, pid=42))
    status = podstatus.pod_status(pod_for(rec), rec, host_ip="127.0.0.1", now=NOW)
    assert status["phase"] == "Succeeded"
    assert status["podIP"] == status["hostIP"] == "127.0.0.1"
    assert status["startTime"] == "2026-01-02T03:04:05Z"
    assert status["observedGeneration"] == 1
    (container,) = status["containerStatuses"]
    assert container["containerID"] == "process://42"
    assert container["state"]["terminated"] == {
        "exitCode": 0,
        "reason": "Completed",
        "message": '{"ok": true}',
        "startedAt": "2026-01-02T03:04:05Z",
        "finishedAt": "2026-01-02T03:04:05Z",
        "containerID": "process://42",
    }
    # Null siblings, so a strategic merge patch drops the earlier state instead of merging it.
    assert container["state"]["running"] is None and container["state"]["waiting"] is None
    assert (container["ready"], container["started"], container["image"]) == (False, False, "img:1")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "PodScheduled": ("True", None),
        "Initialized": ("True", None),
        "ContainersReady": ("False", "PodCompleted"),
        "Ready": ("False", "PodCompleted"),
    }


def test_status_of_a_running_pod_and_transition_times() -> None:
    rec = record(Running(NOW, 7))
    pod = pod_for(rec)
    earlier = "2025-12-31T00:00:00Z"
    pod["status"] = {
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": earlier},
            {"type": "Ready", "status": "False", "lastTransitionTime": earlier},
        ]
    }
    status = podstatus.pod_status(pod, rec, host_ip="127.0.0.1", now=NOW)
    assert status["phase"] == "Running"
    container = status["containerStatuses"][0]
    assert container["state"]["running"] == {"startedAt": "2026-01-02T03:04:05Z"}
    assert (container["ready"], container["started"]) == (True, True)
    since = {c["type"]: c["lastTransitionTime"] for c in status["conditions"]}
    assert since["PodScheduled"] == earlier  # unchanged status keeps its time
    assert since["Ready"] == "2026-01-02T03:04:05Z"  # False -> True is a transition


def test_failed_pod_reports_its_reason_and_unready_containers() -> None:
    rec = record(done(137), Waiting("ContainerCreating"))
    rec.failure = ("DeadlineExceeded", "too long")
    status = podstatus.pod_status(pod_for(rec), rec, host_ip="127.0.0.1", now=NOW)
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed",
        "DeadlineExceeded",
        "too long",
    )
    ready = next(c for c in status["conditions"] if c["type"] == "ContainersReady")
    assert ready["message"] == "containers with unready status: [c0 c1]"


def test_recovered_record_fails_what_an_earlier_run_left_running() -> None:
    pod = a_pod({"name": "a", "image": "i"}, {"name": "b", "image": "i"})
    pod["status"] = {
        "startTime": "2026-01-01T00:00:00Z",
        "containerStatuses": [
            {
                "name": "a",
                "restartCount": 2,
                "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}},
            },
            {
                "name": "b",
                "containerID": "process://9",
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "finishedAt": "2026-01-01T00:00:02Z",
                        "containerID": "process://9",
                    }
                },
            },
        ],
    }
    rec = podstatus.recovered_record(pod, ("KubeletRestarted", "lost"), NOW)
    a, b = rec.containers
    assert isinstance(a.state, Terminated) and a.state.reason == "ContainerStatusUnknown"
    assert a.restart_count == 2
    assert isinstance(b.state, Terminated) and (b.state.exit_code, b.state.pid) == (0, 9)
    status = podstatus.pod_status(pod, rec, host_ip="127.0.0.1", now=NOW)
    assert (status["phase"], status["reason"]) == ("Failed", "KubeletRestarted")


# -- binding and the node ---------------------------------------------------------------------


def test_binder_takes_default_scheduler_pods_that_fit() -> None:
    labels = {"kubernetes.io/os": "linux"}
    pending = a_pod(nodeName="")
    assert binder.wants_binding(pending, labels)
    assert not binder.wants_binding(a_pod(), labels)  # bound already
    assert not binder.wants_binding(a_pod(nodeName="", schedulerName="other"), labels)
    assert not binder.wants_binding(a_pod(nodeName="", nodeSelector={"gpu": "yes"}), labels)
    assert binder.wants_binding(a_pod(nodeName="", nodeSelector=labels), labels)
    deleted = a_pod(nodeName="")
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not binder.wants_binding(deleted, labels)
    assert binder.binding(pending, "genvid-node")["target"]["name"] == "genvid-node"
    assert binder.binding(pending, "genvid-node")["metadata"]["uid"] == "uid-1"


def test_node_status_reports_ready_with_resources_and_endpoint(tmp_path: Path) -> None:
    settings = node.NodeSettings("genvid-node", "127.0.0.1", tmp_path, 10250)
    earlier = "2025-12-31T00:00:00Z"
    status = node.node_status(
        settings, "v1.37.2", [{"type": "Ready", "status": "True", "lastTransitionTime": earlier}]
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("True", earlier)
    assert status["allocatable"]["pods"] == "110"
    assert int(status["capacity"]["cpu"]) >= 1
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert status["nodeInfo"]["kubeletVersion"] == "v1.37.2"


# -- processes --------------------------------------------------------------------------------


def test_mount_points_are_created_once_and_removed_when_unused(tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    mounts = MountPoints(tmp_path / "ledger")
    mounts.acquire(str(target))
    mounts.acquire(str(target))
    mounts.release(str(target))
    assert target.exists()
    mounts.release(str(target))
    assert not target.exists()
    # A crashed kubelet's mount point is cleaned up by the next one.
    mounts.acquire(str(target))
    MountPoints(tmp_path / "ledger").remove_unused()
    assert not target.exists()


def test_existing_files_are_never_removed(tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    target.write_text("")
    mounts = MountPoints(tmp_path / "ledger")
    mounts.acquire(str(target))
    mounts.release(str(target))
    assert target.exists()


async def test_a_mount_point_in_use_by_another_kubelet_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    ours = MountPoints(tmp_path / "ledger")
    ours.acquire(str(target))  # we create it...
    other = Runtime(tmp_path / "other-kubelet")  # ...and another kubelet's container mounts it
    pod_dir = other.pod_dir("videos", "render-x", "uid-2")
    pod_dir.mkdir()
    code = "import time; time.sleep(1)"
    process = other.start(pod_dir, _launch(tmp_path, other, code, target))
    for _ in range(100):
        if mounted_anywhere(str(target)):
            break
        await asyncio.sleep(0.02)
    ours.release(str(target))
    assert target.exists()
    assert await process.wait() == 0
    ours.remove_unused()
    assert not target.exists()


def _launch(
    tmp_path: Path, runtime: Runtime, code: str, message_path: Path, *args: str
) -> ContainerLaunch:
    return ContainerLaunch(
        name=f"main{''.join(args)}",
        argv=["python", "-c", code, *args],
        env=runtime.base_env(hostname="render-x"),
        working_dir=tmp_path,
        termination_message_path=str(message_path),
    )


async def test_each_process_has_a_private_termination_message(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path / "kubelet")
    pod_dir = runtime.pod_dir("videos", "render-x", "uid-1")
    pod_dir.mkdir()
    message_path = tmp_path / "termination-log"  # the same path in both containers
    code = (
        "import sys, time; print('log line', flush=True); "
        f"open({str(message_path)!r}, 'w').write('done ' + sys.argv[1]); time.sleep(0.3)"
    )
    first = runtime.start(pod_dir, _launch(tmp_path, runtime, code, message_path, "1"))
    second = runtime.start(pod_dir, _launch(tmp_path, runtime, code, message_path, "2"))
    assert message_path.exists()  # the mount point, made for them
    assert await first.wait() == 0
    assert await second.wait() == 0
    assert first.termination_message(fallback_to_logs=False) == "done 1"
    assert second.termination_message(fallback_to_logs=False) == "done 2"
    assert not message_path.exists()  # the host never saw a message, and the mount point went
    assert "log line" in (pod_dir / "main1.log").read_text()


async def test_failed_process_falls_back_to_its_log(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path / "kubelet")
    pod_dir = runtime.pod_dir("videos", "render-x", "uid-1")
    pod_dir.mkdir()
    code = "import sys; print('it broke', file=sys.stderr); sys.exit(4)"
    process = runtime.start(pod_dir, _launch(tmp_path, runtime, code, tmp_path / "msg"))
    assert await process.wait() == 4
    assert process.termination_message(fallback_to_logs=False) == ""
    assert "it broke" in process.termination_message(fallback_to_logs=True)


async def test_stop_kills_the_whole_group_after_the_grace_period(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path / "kubelet")
    pod_dir = runtime.pod_dir("videos", "render-x", "uid-1")
    pod_dir.mkdir()
    code = (
        "import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "child = subprocess.Popen(['sleep', '600']); open('child.pid', 'w').write(str(child.pid));"
        " time.sleep(600)"
    )
    process = runtime.start(pod_dir, _launch(tmp_path, runtime, code, tmp_path / "msg"))
    pid_file = tmp_path / "child.pid"
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    child = int(pid_file.read_text())
    assert await process.stop(grace=0.5) == 128 + signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the child is reaped by init once killed
            os.kill(child, 0)
            await asyncio.sleep(0.05)


def test_start_errors_are_explicit(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path / "kubelet")
    pod_dir = tmp_path
    launch = ContainerLaunch("main", ["no-such-binary"], {"PATH": "/usr/bin"}, tmp_path, "/x")
    with pytest.raises(StartError, match="executable file not found"):
        runtime.start(pod_dir, launch)
    missing_dir = ContainerLaunch("main", ["sh"], {"PATH": "/usr/bin"}, tmp_path / "nope", "/x")
    with pytest.raises(StartError, match="workingDir"):
        runtime.start(pod_dir, missing_dir)


# -- status reports ---------------------------------------------------------------------------


class _ExitDuringReportApi:
    """A PodApi whose first Running patch is in flight while the container exits."""

    def __init__(self, release: Path) -> None:
        self.release = release
        self.worker: podworker.PodWorker | None = None
        self.phases: list[str] = []

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        return None

    async def patch_status(self, pod: Obj, status: Obj) -> None:
        self.phases.append(status["phase"])
        if status["phase"] != "Running" or self.phases.count("Running") > 1:
            return
        assert self.worker is not None
        self.release.touch()  # the container exits now, before this patch returns
        container = self.worker.record.containers[0]
        for _ in range(500):
            if isinstance(container.state, Terminated):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the container did not exit")

    async def delete(self, pod: Obj) -> None:
        pass


async def test_an_exit_during_a_status_patch_is_reported(tmp_path: Path) -> None:
    release = tmp_path / "release"
    code = f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.01)"
    pod = a_pod(
        {"name": "main", "image": "img:1", "command": ["python", "-c", code]},
        restartPolicy="Never",
    )
    api = _ExitDuringReportApi(release)
    worker = podworker.PodWorker(
        pod,
        api=api,
        runtime=Runtime(tmp_path / "kubelet"),
        settings=podworker.WorkerSettings(host_ip="127.0.0.1"),
    )
    api.worker = worker
    await asyncio.wait_for(worker._live(), 10)
    assert api.phases[-1] == "Succeeded"
    assert api.phases.count("Running") == 1


# -- list+watch -------------------------------------------------------------------------------


class _Content:
    def __init__(self, lines: list[bytes]) -> None:
        self._lines = lines

    async def readline(self) -> bytes:
        return self._lines.pop(0) if self._lines else b""


class _Response:
    """Enough of aiohttp's response for the client's raw calls and its watch."""

    def __init__(self, body: Obj | None = None, lines: list[Obj] | None = None) -> None:
        self.status = 200
        self._body = body
        self.content = _Content([json.dumps(line).encode() + b"\n" for line in lines or []])

    async def json(self) -> Obj | None:
        return self._body

    async def text(self) -> str:
        return json.dumps(self._body)

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_list_watch_relists_when_the_watch_version_expired() -> None:
    def pod_obj(name: str, version: str) -> Obj:
        return {"metadata": {"name": name, "resourceVersion": version}}

    gone = {"type": "ERROR", "object": {"code": 410, "reason": "Expired", "message": "too old"}}
    responses = [
        _Response(body={"metadata": {"resourceVersion": "1"}, "items": [pod_obj("a", "1")]}),
        _Response(lines=[{"type": "ADDED", "object": pod_obj("b", "2")}, gone]),
        _Response(body={"metadata": {"resourceVersion": "5"}, "items": [pod_obj("b", "4")]}),
    ]
    calls: list[Obj] = []

    async def list_pods(**kwargs: Any) -> _Response:
        calls.append(kwargs)
        return responses.pop(0)

    changes: list[kube.Listed | kube.Event] = []
    async for change in kube.list_watch(list_pods, field_selector="spec.nodeName=n"):
        changes.append(change)
        if len(changes) == 3:
            break
    assert changes == [
        kube.Listed([pod_obj("a", "1")]),
        kube.Event("ADDED", pod_obj("b", "2")),
        kube.Listed([pod_obj("b", "4")]),
    ]
    watch_call = calls[1]
    assert (watch_call["watch"], watch_call["resource_version"]) == (True, "1")
    assert watch_call["field_selector"] == "spec.nodeName=n"
    assert watch_call["timeout_seconds"] == kube.WATCH_SECONDS
