"""The process kubelet runs Jobs' pods on the real control plane the way a kubelet would.

Each test works in a namespace of its own against the admin kubeconfig in `stack_env`, and
polls with deadlines: the control plane's controllers act on their own schedule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from support.polling import eventually
from support.processes import pid_alive

pytestmark = pytest.mark.stack

Obj = dict[str, Any]


# -- helpers --------------------------------------------------------------------------------


def python(code: str) -> list[str]:
    """`python` resolves to the project's interpreter: the kubelet puts its venv first on PATH."""
    return ["python", "-c", code]


def job(name: str, container: Obj, *, backoff_limit: int = 0) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "main", "image": "genvid/ignored", **container}],
                }
            },
        },
    }


def pod(name: str, container: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "genvid/ignored", **container}],
            **spec,
        },
    }


def job_condition(job: Any, kind: str) -> Any:
    for condition in job.status.conditions or []:
        if condition.type == kind and condition.status == "True":
            return condition
    return None


async def run_job(
    api: client.ApiClient, namespace: str, manifest: Obj
) -> tuple[client.BatchV1Api, client.CoreV1Api]:
    """Create the Job; the batch and core clients to follow it with."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    await batch.create_namespaced_job(namespace, manifest)
    return batch, core


async def job_pods(core: client.CoreV1Api, namespace: str, job_name: str) -> list[Any]:
    pods = await core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}")
    return list(pods.items)


async def finished(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    found = await core.read_namespaced_pod(name, namespace)
    return found if found.status.phase in ("Succeeded", "Failed") else None


# -- the cases ------------------------------------------------------------------------------


async def test_job_completes_with_its_termination_message_and_logs(
    api: client.ApiClient, namespace: str
) -> None:
    message = {"video": "preview-1", "frames": 96}
    code = (
        "import json; print('rendering preview', flush=True); "
        f"open('/dev/termination-log', 'w').write(json.dumps({message!r}))"
    )
    batch, core = await run_job(api, namespace, job("render", {"command": python(code)}))

    async def complete() -> Any:
        return job_condition(await batch.read_namespaced_job("render", namespace), "Complete")

    await eventually(complete, what="Job Complete", seconds=60)
    (finished_pod,) = await job_pods(core, namespace, "render")
    status = finished_pod.status.container_statuses[0]
    assert json.loads(status.state.terminated.message) == message
    assert status.state.terminated.exit_code == 0
    assert status.state.terminated.reason == "Completed"
    assert status.container_id.startswith("process://")
    assert finished_pod.status.phase == "Succeeded"
    # kubectl logs: the apiserver fetches them from the kubelet's log endpoint.
    logs = await core.read_namespaced_pod_log(finished_pod.metadata.name, namespace)
    assert "rendering preview" in logs


async def test_failing_job_is_retried_up_to_its_backoff_limit(
    api: client.ApiClient, namespace: str
) -> None:
    batch, core = await run_job(
        api, namespace, job("fail", {"command": python("import sys; sys.exit(3)")}, backoff_limit=2)
    )

    async def failed() -> Any:
        return job_condition(await batch.read_namespaced_job("fail", namespace), "Failed")

    condition = await eventually(failed, what="Job Failed", seconds=120)
    assert condition.reason == "BackoffLimitExceeded"
    pods = await job_pods(core, namespace, "fail")
    assert len(pods) == 3
    for failed_pod in pods:
        assert failed_pod.status.phase == "Failed"
        terminated = failed_pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (3, "Error")


async def test_deleting_a_running_pod_kills_its_process_and_removes_it(
    api: client.ApiClient, namespace: str
) -> None:
    sleeper = job("sleep", {"command": python("import time; time.sleep(600)")}, backoff_limit=1)
    _, core = await run_job(api, namespace, sleeper)

    async def running() -> Any:
        for found in await job_pods(core, namespace, "sleep"):
            statuses = found.status.container_statuses or []
            if statuses and statuses[0].state.running is not None:
                return found
        return None

    target = await eventually(running, what="pod running", seconds=60)
    pid = int(target.status.container_statuses[0].container_id.removeprefix("process://"))
    assert pid_alive(pid)

    await core.delete_namespaced_pod(target.metadata.name, namespace)

    async def process_gone() -> bool:
        return not pid_alive(pid)

    async def pod_gone() -> bool:
        try:
            found = await core.read_namespaced_pod(target.metadata.name, namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return bool(found.metadata.uid != target.metadata.uid)

    await eventually(process_gone, what="process killed", seconds=30)
    await eventually(pod_gone, what="pod deleted", seconds=30)


async def test_env_from_secret_and_config_map_and_working_dir_reach_the_process(
    api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret", "user": "ann"}}
    )
    await core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"model": "veo-3", "seconds": "4"}}
    )
    code = (
        "import json, os, sys; open('/dev/termination-log', 'w').write(json.dumps("
        "{'cwd': os.getcwd(), 'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items()"
        " if k.startswith(('GV_', 'CFG_', 'SECRET_'))}}))"
    )
    container = {
        "command": python(code),
        "args": ["$(GV_MODEL)", "$$(GV_MODEL)"],
        "workingDir": str(tmp_path),
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "GV_TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {
                "name": "GV_MODEL",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "model"}},
            },
            {
                "name": "GV_MISSING",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}},
            },
            {"name": "GV_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "GV_LABEL",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}},
            },
            {"name": "GV_URL", "value": "veo://$(GV_MODEL)/$(CFG_seconds)s"},
        ],
    }
    manifest = pod("env", container)
    manifest["metadata"]["labels"] = {"app": "genvid"}
    await core.create_namespaced_pod(namespace, manifest)

    done = await eventually(
        lambda: finished(core, namespace, "env"), what="pod finished", seconds=60
    )
    assert done.status.phase == "Succeeded", done.status
    seen = json.loads(done.status.container_statuses[0].state.terminated.message)
    assert seen["cwd"] == str(tmp_path)
    assert seen["argv"] == ["veo-3", "$(GV_MODEL)"]
    assert seen["env"] == {
        "CFG_model": "veo-3",
        "CFG_seconds": "4",
        "GV_TOKEN": "s3cret",
        "GV_MODEL": "veo-3",
        "GV_POD": "env",
        "GV_LABEL": "genvid",
        "GV_URL": "veo://veo-3/4s",
    }


async def test_container_without_command_fails_clearly(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, pod("nocmd", {}))

    done = await eventually(
        lambda: finished(core, namespace, "nocmd"), what="pod finished", seconds=60
    )
    assert done.status.phase == "Failed"
    terminated = done.status.container_statuses[0].state.terminated
    assert terminated.reason == "StartError"
    assert "explicit command" in terminated.message


async def test_on_failure_restarts_in_place_until_success(
    api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    code = (
        "import os, sys; first = not os.path.exists('tried'); open('tried', 'w').close(); "
        "sys.exit(1 if first else 0)"
    )
    manifest = pod(
        "flaky", {"command": python(code), "workingDir": str(tmp_path)}, restartPolicy="OnFailure"
    )
    await core.create_namespaced_pod(namespace, manifest)

    done = await eventually(
        lambda: finished(core, namespace, "flaky"), what="pod finished", seconds=60
    )
    assert done.status.phase == "Succeeded"
    status = done.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1


async def test_active_deadline_fails_the_pod(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    manifest = pod(
        "late", {"command": python("import time; time.sleep(600)")}, activeDeadlineSeconds=2
    )
    await core.create_namespaced_pod(namespace, manifest)

    done = await eventually(
        lambda: finished(core, namespace, "late"), what="pod finished", seconds=60
    )
    assert (done.status.phase, done.status.reason) == ("Failed", "DeadlineExceeded")
    assert done.status.container_statuses[0].state.terminated is not None
