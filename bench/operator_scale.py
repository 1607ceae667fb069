"""The operator with 10,000 VideoGenerations present: its memory and its start-up resync time,
against a bare client listing the same resources, and its memory after they are deleted.

Starts its own etcd, kube-apiserver and kube-controller-manager (the dev stack's binaries) and
NATS in a temp folder; no kubelet (the Jobs of unfinished generations stay Pending) and no
Postgres (finished and synced resources need neither at start-up; the operator then runs without
admission control). The resources are made fast with a bare client and are realistic: the api's
spec (a 200-character prompt, a negative prompt, a seed, labels and the owner annotation); 98 %
are SUCCEEDED and synced with the operator's full terminal status (conditions, output, cost),
2 % are new (no status: the operator queues them and creates their Jobs at start-up).

For each size (0, 1k, 5k, 10k; --quick: 0, 200, 1k), in the same run:
- resync time: from the operator's process start until every VideoGeneration's initial event
  has been handled (`genvid_watch_events_total{resource="generation"}` >= N), the retention
  index holds every finished one (`genvid_operator_tracked_generations{structure="finished"}`)
  and no reconcile pass is running (`genvid_reconciles_in_progress` == 0); sampled every 0.2 s;
- the operator's RSS then and after 15 s idle (VmRSS), and its peak (VmHWM);
- the baseline: a plain process that LISTs the N resources with kubernetes_asyncio (time from
  its start until listed, and its peak RSS).
At the largest size all the resources are then deleted (one DELETE collection) while the
operator runs; its per-generation entries must be back to 0 and its RSS is read again.

    .venv/bin/python -m bench.operator_scale [--quick | --sizes 0,1000,5000,10000]

Writes bench/results/operator_scale.json and the plots operator_scale_rss.svg and
operator_scale_resync.svg (each against the resource count).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from bench.report import machine_text
from bench.summary import figure
from bench.svg import line_chart
from genvid_contracts.resource import GROUP, KIND, PLURAL, VERSION
from genvid_devstack import apps
from genvid_devstack.binaries import ensure_binaries
from genvid_devstack.controlplane import start_control_plane
from genvid_devstack.nats import start_nats
from genvid_devstack.process import Process, free_port, spawn
from genvid_devstack.stack import apply_crds
from genvid_devstack.state import State
from genvid_operator.handlers import LIST_PAGE_SIZE, WORKER_IDLE_SECONDS

RESULTS = Path(__file__).resolve().parent / "results"
NAMESPACE = "genvid-scale"
UNFINISHED_EVERY = 50  # one resource in 50 is new and unfinished
SETTLE_SECONDS = 15.0
CONCURRENCY = 48
RSS_TARGET_MIB = 300 * 1000**2 / 2**20  # 300 MB
RESYNC_TARGET_SECONDS = 60.0
_OWNER = "3f6c2a1e-8d4b-4c2a-9a77-1b2c3d4e5f60"
_PROMPT = (
    "A slow aerial shot over a misty pine forest at sunrise, golden light breaking through the "
    "fog, a river winding between the trees, birds lifting off as the camera glides forward, "
    "cinematic colour grading, shallow depth of field"
)


def manifest(index: int) -> dict[str, Any]:
    """A VideoGeneration as the api builds it (`build_video_generation`)."""
    name = f"00000000-0000-4000-8000-{index:012d}"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/part-of": "genvid", "genvid.io/owner": _OWNER},
            "annotations": {"genvid.io/owner-name": "scale-bench-user"},
        },
        "spec": {
            "prompt": f"{_PROMPT} #{index}",
            "negativePrompt": "blurry, low quality, watermark, text overlay",
            "model": "veo-3.0-fast-generate-001",
            "durationSeconds": 4,
            "aspectRatio": "16:9",
            "seed": index,
            "owner": _OWNER,
            "cancel": False,
        },
    }


def finished_status(name: str) -> dict[str, Any]:
    """A SUCCEEDED status as the operator leaves it: synced, an hour old (within retention)."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

    def stamp(seconds: int) -> str:
        return (at + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def condition(kind: str, reason: str, seconds: int) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": "",
            "lastTransitionTime": stamp(seconds),
            "observedGeneration": 1,
        }

    return {
        "phase": "SUCCEEDED",
        "reason": "Succeeded",
        "message": "The preview is ready.",
        "conditions": [
            condition("Queued", "Admitted", 0),
            condition("Running", "WorkerStarted", 2),
            condition("Finished", "Succeeded", 48),
        ],
        "observedGeneration": 1,
        "eventSeq": 3,
        "syncedSeq": 3,
        "jobName": f"genvid-{name}",
        "attempts": 1,
        "queuedAt": stamp(0),
        "admittedAt": stamp(0),
        "startedAt": stamp(2),
        "finishedAt": stamp(48),
        "providerOperation": f"models/veo-3.0-fast-generate-001/operations/{name}",
        "output": {
            "bucket": "genvid-previews",
            "object": f"previews/{name}/preview.mp4",
            "posterObject": f"previews/{name}/poster.jpg",
            "sizeBytes": 1843211,
            "durationSeconds": 4.0,
        },
        "estimatedCostUSD": "0.60",
    }


async def api_client(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    configuration.connection_pool_maxsize = CONCURRENCY
    return client.ApiClient(configuration=configuration)


async def populate(kubeconfig: Path, start: int, stop: int) -> float:
    """Create resources start..stop-1 (the finished ones with their status); returns seconds."""
    began = time.monotonic()
    async with await api_client(kubeconfig) as api:
        custom = client.CustomObjectsApi(api)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def create(index: int) -> None:
            body = manifest(index)
            name = body["metadata"]["name"]
            async with gate:
                await custom.create_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL, body
                )
                if index % UNFINISHED_EVERY:
                    await custom.patch_namespaced_custom_object_status(
                        GROUP, VERSION, NAMESPACE, PLURAL, name,
                        {"status": finished_status(name)},
                        _content_type="application/merge-patch+json",
                    )  # fmt: skip

        await asyncio.gather(*(create(index) for index in range(start, stop)))
    return time.monotonic() - began


async def delete_all(kubeconfig: Path) -> None:
    """DELETE collection until none is left: 10,000 objects take longer than the apiserver's
    request timeout, which ends the request (a 504, or the connection closed) while what it
    deleted stays deleted."""
    while await remaining(kubeconfig):
        async with await api_client(kubeconfig) as api:
            try:
                await client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL
                )
            except ApiException as error:
                if error.status != 504:
                    raise
            except aiohttp.ServerDisconnectedError:
                pass


async def remaining(kubeconfig: Path) -> int:
    async with await api_client(kubeconfig) as api:
        listed = await client.CustomObjectsApi(api).list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, limit=1
        )
    left = listed["metadata"].get("remainingItemCount") or 0
    return int(left) + len(listed["items"])


async def served(kubeconfig: Path, seconds: float = 60) -> None:
    """Until the apiserver serves VideoGenerations: just after the CRD is established its
    storage may still answer 429 ("storage is (re)initializing")."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await remaining(kubeconfig)
            return
        except ApiException as error:
            if error.status != 429 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


# The baseline process: nothing but kubernetes_asyncio, one LIST, its time and memory as JSON.
_BARE_LIST = """
import asyncio, json, os, sys, time
from kubernetes_asyncio import client, config

async def main(kubeconfig, namespace, group, version, plural):
    began = time.monotonic()
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=kubeconfig, client_configuration=configuration, persist_config=False
    )
    async with client.ApiClient(configuration=configuration) as api:
        listed = await client.CustomObjectsApi(api).list_namespaced_custom_object(
            group, version, namespace, plural
        )
    status = dict(line.split(":", 1) for line in open(f"/proc/{os.getpid()}/status"))
    memory = {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}
    figures = {"list_seconds": time.monotonic() - began, "count": len(listed["items"])}
    print(json.dumps(figures | memory))

asyncio.run(main(*sys.argv[1:]))
"""


def bare_list(kubeconfig: Path) -> dict[str, float]:
    """A plain process LISTs the resources: time from its start to listed, and its memory."""
    began = time.monotonic()
    argv = [sys.executable, "-c", _BARE_LIST, str(kubeconfig), NAMESPACE, GROUP, VERSION, PLURAL]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the bare LIST failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout)
    return figures | {"total_seconds": time.monotonic() - began}


class Operator:
    """The operator as a process of its own, and what its metrics say."""

    def __init__(self, root: Path, kubeconfig: Path, nats_url: str) -> None:
        self.metrics_port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GENVID_") and key not in ("DATABASE_URL", "NATS_URL")
        }
        env |= {
            "KUBECONFIG": str(kubeconfig),
            "GENVID_NAMESPACE": NAMESPACE,
            "GENVID_NATS_URL": nats_url,
            "GENVID_METRICS_PORT": str(self.metrics_port),
        }
        self.started = time.monotonic()
        self.process: Process = spawn(
            "operator",
            [
                sys.executable,
                "-m",
                "genvid_operator",
                f"--liveness=http://127.0.0.1:{free_port()}/healthz",
            ],
            log_dir=root / "logs",
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.process.popen.pid

    def metrics(self) -> dict[str, float]:
        """Every sample as `name{label=value,...}` -> value; empty until it serves them."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    async def until(self, done: Callable[[dict[str, float]], bool], seconds: float) -> float:
        """Poll the metrics until `done`; the seconds since the process started."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.popen.poll() is not None:
                raise RuntimeError(f"the operator exited:\n{self.process.log_tail(40)}")
            samples = self.metrics()
            if samples and done(samples):
                return time.monotonic() - self.started
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the operator did not get there in {seconds:.0f} s")

    def stop(self) -> None:
        self.process.stop()


def resynced(count: int, finished: int) -> Callable[[dict[str, float]], bool]:
    def done(samples: dict[str, float]) -> bool:
        return (
            samples.get("genvid_watch_events_total{resource=generation}", 0) >= count
            and samples.get("genvid_operator_tracked_generations{structure=finished}", -1)
            >= finished
            and samples.get("genvid_reconciles_in_progress{}", 1) == 0
        )

    return done


def tracked(samples: dict[str, float]) -> float:
    """The operator's per-generation entries in memory (locks and the retention index)."""
    prefix = "genvid_operator_tracked_generations"
    return sum(value for key, value in samples.items() if key.startswith(prefix))


def released(samples: dict[str, float]) -> bool:
    return (
        samples.get("genvid_operator_tracked_generations{structure=finished}", -1) == 0
        and samples.get("genvid_operator_tracked_generations{structure=locks}", -1) == 0
    )


async def measure_size(
    root: Path, kubeconfig: Path, nats_url: str, count: int, last: bool
) -> dict[str, Any]:
    finished = count - len(range(0, count, UNFINISHED_EVERY))
    row: dict[str, Any] = {"count": count, "bare_list": bare_list(kubeconfig)}
    operator = Operator(root, kubeconfig, nats_url)
    try:
        row["resync_seconds"] = await operator.until(resynced(count, finished), 600)
        row["rss_at_resync_mib"] = memory_mib(operator.pid)["VmRSS"]
        row["tracked_at_resync"] = tracked(operator.metrics())
        await asyncio.sleep(SETTLE_SECONDS)
        row |= {f"{k}_settled_mib": v for k, v in memory_mib(operator.pid).items()}
        print(json.dumps(row), flush=True)
        if last and count:
            await delete_all(kubeconfig)
            row["delete_seconds"] = await operator.until(released, 600) - (
                row["resync_seconds"] + SETTLE_SECONDS
            )
            await asyncio.sleep(SETTLE_SECONDS)
            row["rss_after_delete_mib"] = memory_mib(operator.pid)["VmRSS"]
            row["tracked_after_delete"] = tracked(operator.metrics())
            row["left_in_apiserver"] = await remaining(kubeconfig)
            print(json.dumps(row), flush=True)
    finally:
        operator.stop()
    return row


def _figure(
    name: str, value: float, unit: str, baseline: str | None, base: float | None, target: str | None
) -> dict[str, Any]:
    """A figure whose ratio is against `base`, the baseline's value."""
    return figure(name, value, unit, baseline, value / base if base else None, target)


def report(rows: list[dict[str, Any]], populate_seconds: float) -> dict[str, Any]:
    empty, largest = rows[0], rows[-1]
    n = largest["count"]
    figures = []
    for row in rows[1:]:
        count = row["count"]
        figures += [
            _figure(
                f"operator RSS with {count} resources (after 15 s idle)",
                row["VmRSS_settled_mib"], "MiB", "operator RSS with 0 resources, same run",
                empty["VmRSS_settled_mib"], "<= 300 MB (286 MiB)",
            ),
            _figure(
                f"operator peak RSS with {count} resources",
                row["VmHWM_settled_mib"], "MiB", f"a bare LIST of the {count} (peak RSS)",
                row["bare_list"]["VmHWM"], "<= 300 MB (286 MiB)",
            ),
            _figure(
                f"start-up resync time with {count} resources",
                row["resync_seconds"], "s",
                f"a bare LIST of the {count}, process start to listed",
                row["bare_list"]["total_seconds"], "<= 60 s",
            ),
        ]  # fmt: skip
    figures += [
        _figure(
            "operator RSS with 0 resources", empty["VmRSS_settled_mib"], "MiB",
            "a bare kubernetes_asyncio process (peak RSS, 0 listed)",
            empty["bare_list"]["VmHWM"], None,
        ),
        _figure(
            f"operator RSS after deleting the {n}", largest["rss_after_delete_mib"], "MiB",
            f"operator RSS with the {n} present", largest["VmRSS_settled_mib"], None,
        ),
        _figure(
            f"per-generation entries after deleting the {n}", largest["tracked_after_delete"],
            "count", "0 (locks and the retention index)", None, "0",
        ),
        _figure(
            f"time for the operator to release the {n} after one DELETE collection",
            largest["delete_seconds"], "s", None, None, None,
        ),
    ]  # fmt: skip
    return {
        "benchmark": "operator_scale",
        "title": f"The operator with {n} VideoGenerations: memory and start-up resync",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_text(),
        "figures": figures,
        "rows": rows,
        "notes": [
            "2 cores shared with other engineers' runs: times vary with their load.",
            f"{UNFINISHED_EVERY - 1} in {UNFINISHED_EVERY} resources are SUCCEEDED and synced "
            "(the operator's full terminal status); the rest are new and get their Jobs at "
            "start-up (no kubelet: they stay Pending). No Postgres: no admission control.",
            "Resync time: operator process start until every VideoGeneration's initial event "
            "is handled, the retention index holds every finished one and no reconcile pass "
            "runs (metrics sampled every 0.2 s).",
            f"The operator's kopf settings for start-up memory: the initial LIST in pages of "
            f"{LIST_PAGE_SIZE}, an object's worker ending {WORKER_IDLE_SECONDS} s after its last "
            "event (handlers.startup).",
            f"Creating the {n} with a bare client (create + status patch, {CONCURRENCY} at "
            f"once) took {populate_seconds:.1f} s.",
        ],
    }


def plot(rows: list[dict[str, Any]]) -> None:
    counts = [float(row["count"]) for row in rows]
    line_chart(
        RESULTS / "operator_scale_rss.svg",
        "Operator memory against VideoGenerations present",
        "VideoGenerations",
        "MiB",
        {
            "operator RSS (15 s idle)": list(
                zip(counts, [row["VmRSS_settled_mib"] for row in rows], strict=True)
            ),
            "operator peak RSS": list(
                zip(counts, [row["VmHWM_settled_mib"] for row in rows], strict=True)
            ),
            "bare LIST, peak RSS": list(
                zip(counts, [row["bare_list"]["VmHWM"] for row in rows], strict=True)
            ),
        },
        target=RSS_TARGET_MIB,
    )
    line_chart(
        RESULTS / "operator_scale_resync.svg",
        "Operator start-up resync time against VideoGenerations present",
        "VideoGenerations",
        "s",
        {
            "operator resync": list(
                zip(counts, [row["resync_seconds"] for row in rows], strict=True)
            ),
            "bare LIST, process start to listed": list(
                zip(counts, [row["bare_list"]["total_seconds"] for row in rows], strict=True)
            ),
        },
        target=RESYNC_TARGET_SECONDS,
    )


async def run(root: Path, sizes: list[int]) -> None:
    state = State(root)
    state.prepare()
    binaries = ensure_binaries()
    plane = start_control_plane(state, binaries)
    nats = start_nats(root, state.logs)
    try:
        kubectl = Path(sys.executable).parent / "kubectl"
        apply_crds(kubectl, state.kubeconfig)
        apps.kubectl_apply(kubectl, state.kubeconfig, apps.namespace_objects(NAMESPACE, {}))
        await served(state.kubeconfig)
        rows, made, populate_seconds = [], 0, 0.0
        for size in sizes:
            populate_seconds += await populate(state.kubeconfig, made, size)
            made = size
            rows.append(
                await measure_size(root, state.kubeconfig, nats.url, size, size == sizes[-1])
            )
    finally:
        nats.process.stop()
        for process in reversed(plane.processes):
            process.stop()
    RESULTS.mkdir(exist_ok=True)
    result = report(rows, populate_seconds)
    (RESULTS / "operator_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows)
    for item in result["figures"]:
        ratio = f"  (x{item['ratio']} of {item['baseline']})" if item["ratio"] else ""
        print(f"{item['name']}: {item['value']} {item['unit']}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="0, 200 and 1,000 resources")
    parser.add_argument("--sizes", help="comma-separated resource counts, ascending, starting at 0")
    args = parser.parse_args()
    sizes = [0, 200, 1000] if args.quick else [0, 1000, 5000, 10000]
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="genvid-bench-scale-") as folder:
        asyncio.run(run(Path(folder), sizes))


if __name__ == "__main__":
    main()
