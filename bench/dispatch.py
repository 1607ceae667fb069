"""How fast the operator turns generations into Jobs, against the apiserver's own pace.

Two measurements on one local stack (started here, in a temp folder), in the same run:

- Rates. A bare `kubernetes_asyncio` client creates N worker Jobs (the operator's manifest) as
  fast as the apiserver takes them: the baseline, N over the time from its first request to the
  N-th Job seen on a watch. Then N VideoGenerations are created at once, directly on the
  apiserver, and the operator's dispatch rate is N over the time from the first creation to its
  N-th Job (seen on the same kind of watch). Admission caps are raised so that none waits.
- Backlog. N VideoGenerations are created in another namespace while no operator watches it,
  then an operator is started for it: its own Job-creation rate is N over the time from its
  first Job to its N-th (its start-up, imports to the first LIST, is left out).
- Latency. POST /generate through the real api at a fixed request rate (many users, rate
  limits off, budgets high): the time from sending the POST to its Job appearing on a watch.
- CPU. During each rate measurement, the CPU time of every process of the run (the stack's,
  the operator's, the api's and this client's) by component, per Job: on a machine whose cores
  are all busy, the rate ratio follows the ratio of the whole machine's CPU per Job.

No worker runs: a ResourceQuota of zero pods in both namespaces keeps the Jobs without pods, so
the figures are the control plane's and the operator's, not the machine's worker processes.

    .venv/bin/python -m bench.dispatch [--quick] [--jobs N] [--rate R] [--seconds S]

Writes bench/results/dispatch.json, dispatch-latency.svg (the latency's CDF) and
dispatch-rates.svg (the three rates), dispatch-cpu.svg (CPU per Job by component).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kubernetes_asyncio import client, config, watch

from bench.accounts import register
from bench.cpu import tree_cpu
from bench.report import machine_text
from bench.services import connection
from bench.summary import figure
from bench.svg import bar_chart, cdf_chart
from genvid_contracts.resource import DEFAULT_MODEL, GROUP, KIND, PLURAL, VERSION
from genvid_devstack import apps
from genvid_devstack.stack import read_env_file
from genvid_devstack.state import State
from genvid_operator.config import Settings as OperatorSettings
from genvid_operator.jobspec import build_job, job_name, price_per_second

RESULTS = Path(__file__).resolve().parent / "results"
KUBECTL = Path(sys.executable).parent / "kubectl"
CONCURRENCY = 20  # requests in flight for the bare client and for the burst of resources
P99_TARGET_MS = 500
BACKLOG_FIGURE = "operator Job creation from a backlog (N over first to N-th Job)"
COMPONENTS = ("apiserver", "etcd", "operator", "api", "postgres", "nats", "bench client", "other")
_BY_COMMAND = {
    "kube-apiserver": "apiserver",
    "etcd": "etcd",
    "postgres": "postgres",
    "nats-server": "nats",
}


def component_cpu(operators: Collection[int], api: int) -> dict[str, float]:
    """CPU seconds so far of this run's processes by component (their names as `COMPONENTS`)."""
    totals = dict.fromkeys(COMPONENTS, 0.0)
    for process in tree_cpu(os.getpid()):
        if process.pid == os.getpid():
            name = "bench client"
        elif process.pid in operators:
            name = "operator"
        elif process.pid == api:
            name = "api"
        else:
            name = _BY_COMMAND.get(process.command, "other")
        totals[name] += process.seconds
    return totals


class CpuMeter:
    """CPU per Job by component (ms) over measurement windows: `with meter.window(name) as
    jobs:` and set `jobs.count` to the Jobs created inside the window before it ends."""

    def __init__(self, operators: list[int], api: int) -> None:
        self._operators, self._api = operators, api  # `operators` may grow meanwhile
        self.windows: dict[str, dict[str, float]] = {}

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[JobCount]:
        jobs = JobCount()
        before = component_cpu(self._operators, self._api)
        yield jobs
        after = component_cpu(self._operators, self._api)
        if jobs.count <= 0:
            raise RuntimeError(f"no Job was made in the {name} window: nothing to divide by")
        self.windows[name] = {
            key: (after[key] - before[key]) / jobs.count * 1000 for key in COMPONENTS
        }

    def total(self, name: str) -> float:
        return sum(self.windows[name].values())


@dataclasses.dataclass
class JobCount:
    count: int = 0


def stack_pid(root: Path, binary: str) -> int:
    """The stack's process of `binary` (kube-apiserver, kube-controller-manager), found by its
    command line under `root`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().split(b"\0")
                if command[0].endswith(binary.encode()) and str(root).encode() in b" ".join(
                    command
                ):
                    return int(entry.name)
    raise RuntimeError(f"no {binary} under the stack's folder")


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """The process stopped (SIGSTOP) for the block, continued whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _quantile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


@contextlib.contextmanager
def local_stack(root: Path) -> Any:
    """The dev stack as `make up` runs it, in `root`; its env file's settings."""
    log = (root / "supervisor.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "DATABASE_URL")}
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "genvid_devstack", "run", f"--state-dir={root / 'stack'}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 600
        while not (root / "stack" / "ready").exists():
            if supervisor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "supervisor.log").read_text()[-4000:])
            time.sleep(0.2)
        yield read_env_file(root / "stack" / "env")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
        log.close()


async def scratch_database(base: str) -> str:
    name = f"genvid_bench_dispatch_{uuid.uuid4().hex[:8]}"
    async with connection(base) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path=f"/{name}"))


def prepare_namespace(kubeconfig: Path, namespace: str) -> None:
    """The worker's objects, and a quota of no pods: Jobs are created, workers never run."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-workers", "namespace": namespace},
        "spec": {"hard": {"pods": "0"}},
    }
    objects = [*apps.namespace_objects(namespace, {"GENVID_PROVIDER": "synthetic"}), quota]
    apps.kubectl_apply(KUBECTL, kubeconfig, objects)


class JobWatch:
    """When each Job of a namespace was first seen (monotonic clock), from one watch."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self._batch = client.BatchV1Api(api)
        self._namespace = namespace
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JobWatch:
        listed = await self._batch.list_namespaced_job(self._namespace)
        self.seen.update((job.metadata.name, time.monotonic()) for job in listed.items)
        self._task = asyncio.create_task(self._run(listed.metadata.resource_version))
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self, version: str) -> None:
        """Watch from `version`; a watch that ends or fails (a loaded apiserver drops some) is
        followed by a LIST, whose new Jobs count as seen then, and a new watch."""
        while True:
            with contextlib.suppress(Exception):
                async with watch.Watch().stream(
                    self._batch.list_namespaced_job,
                    self._namespace,
                    resource_version=version,
                    timeout_seconds=300,
                ) as events:
                    async for event in events:
                        self.seen.setdefault(event["object"].metadata.name, time.monotonic())
            with contextlib.suppress(Exception):
                listed = await self._batch.list_namespaced_job(self._namespace)
                for job in listed.items:
                    self.seen.setdefault(job.metadata.name, time.monotonic())
                version = listed.metadata.resource_version

    async def until(self, names: set[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not names <= self.seen.keys():
            if time.monotonic() > deadline:
                missing = len(names - self.seen.keys())
                raise RuntimeError(f"{missing} Jobs never appeared")
            await asyncio.sleep(0.05)


async def bounded(actions: list[Callable[[], Awaitable[object]]]) -> None:
    """Run `actions` with at most CONCURRENCY in flight."""
    queue = list(reversed(actions))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def generation(namespace: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": str(uuid.uuid4()), "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {
            "prompt": f"a dispatched fox {index}",
            "owner": str(uuid.uuid4()),
            "model": DEFAULT_MODEL,
            "durationSeconds": 4,
            "aspectRatio": "16:9",
        },
    }


async def bare_rate(api: client.ApiClient, namespace: str, jobs: int) -> float:
    """Jobs per second a bare client creates (the operator's manifest, no owner), timed as the
    operator's are: from the first request to the last Job seen on a watch."""
    settings = OperatorSettings()
    price = price_per_second(settings, DEFAULT_MODEL)
    assert price is not None
    batch = client.BatchV1Api(api)
    manifests = []
    for index in range(jobs):
        manifest = build_job(generation(namespace, index), settings, price)  # type: ignore[arg-type]
        manifest["metadata"].pop("ownerReferences", None)
        manifests.append(manifest)
    async with JobWatch(api, namespace) as jobs_seen:
        start = time.monotonic()
        await bounded(
            [
                lambda body=body: batch.create_namespaced_job(namespace, body)  # type: ignore[misc]
                for body in manifests
            ]
        )
        names = {manifest["metadata"]["name"] for manifest in manifests}
        await jobs_seen.until(names, seconds=300)
        return jobs / (max(jobs_seen.seen[name] for name in names) - start)


async def create_generations(api: client.ApiClient, namespace: str, jobs: int) -> set[str]:
    """Create `jobs` VideoGenerations directly on the apiserver; the names of their Jobs."""
    custom = client.CustomObjectsApi(api)
    bodies = [generation(namespace, index) for index in range(jobs)]
    for body in bodies:
        del body["metadata"]["uid"]
    await bounded(
        [
            lambda body=body: custom.create_namespaced_custom_object(  # type: ignore[misc]
                GROUP, VERSION, namespace, PLURAL, body
            )
            for body in bodies
        ]
    )
    return {job_name(body["metadata"]["name"]) for body in bodies}


async def operator_rate(api: client.ApiClient, namespace: str, jobs: int) -> float:
    """Jobs per second the operator makes of a burst of VideoGenerations."""
    async with JobWatch(api, namespace) as jobs_seen:
        start = time.monotonic()
        names = await create_generations(api, namespace, jobs)
        await jobs_seen.until(names, seconds=300)
        return jobs / (max(jobs_seen.seen[name] for name in names) - start)


async def backlog_rate(
    api: client.ApiClient,
    namespace: str,
    jobs: int,
    start_operator: Callable[[], object],
    meter: CpuMeter,
) -> tuple[float, float]:
    """Jobs per second an operator started over `jobs` waiting VideoGenerations makes: `jobs`
    over the time from its first Job to its `jobs`-th, so its own start-up (imports, login,
    the first LIST) is left out; and the seconds from its start to its first Job. The CPU is
    metered from its liveness on, per Job created after that."""
    names = await create_generations(api, namespace, jobs)
    async with JobWatch(api, namespace) as jobs_seen:
        started = time.monotonic()
        await asyncio.to_thread(start_operator)  # returns once its liveness probe answers
        with meter.window("backlog") as counted:
            counted.count = jobs - len(names & jobs_seen.seen.keys())
            await jobs_seen.until(names, seconds=600)
    seen = sorted(jobs_seen.seen[name] for name in names)
    return jobs / (seen[-1] - seen[0]), seen[0] - started


async def post_latencies(
    api: client.ApiClient, api_url: str, namespace: str, rate: float, seconds: float
) -> tuple[list[float], list[float], list[str]]:
    """POST /generate at `rate` per second for `seconds`; (POST latency, POST -> Job) in s,
    and the answers that were not 202 (left out of both)."""
    requests = int(rate * seconds)
    async with httpx.AsyncClient(base_url=api_url, timeout=60, trust_env=False) as http:
        users = [await register(http, "dispatch") for _ in range(max(requests // 10, 1))]
        sent: dict[str, float] = {}
        posts: list[float] = []
        refused: list[str] = []

        async def post(index: int) -> None:
            started = time.monotonic()
            answer = await http.post(
                "/generate",
                json={"prompt": f"a timed fox {index}", "duration_seconds": 4},
                headers=users[index % len(users)],
            )
            if answer.status_code != 202:
                refused.append(f"{answer.status_code} {answer.text[:120]}")
                return
            posts.append(time.monotonic() - started)
            sent[job_name(answer.json()["id"])] = started

        async with JobWatch(api, namespace) as jobs_seen:
            tasks = []
            begin = time.monotonic()
            for index in range(requests):
                await asyncio.sleep(max(0.0, begin + index / rate - time.monotonic()))
                tasks.append(asyncio.create_task(post(index)))
            await asyncio.gather(*tasks)
            await jobs_seen.until(set(sent), seconds=120)
            return posts, [jobs_seen.seen[name] - at for name, at in sent.items()], refused


@contextlib.asynccontextmanager
async def kube(kubeconfig: str) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = CONCURRENCY * 2
    async with client.ApiClient(configuration) as api:
        yield api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run (100 Jobs, 5 s)")
    parser.add_argument("--jobs", type=int, default=500, help="Jobs per rate measurement")
    parser.add_argument("--rate", type=float, default=20, help="POST /generate per second")
    parser.add_argument("--seconds", type=float, default=30, help="of POSTs at that rate")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.seconds = 100, 5
    with tempfile.TemporaryDirectory(prefix="genvid-bench-dispatch-") as folder:
        root = Path(folder)
        with local_stack(root) as stack_env:
            results = run(root, stack_env, args)
    write(results, args)


def run(root: Path, stack_env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    kubeconfig = Path(stack_env["KUBECONFIG"])
    bare_ns, operator_ns, backlog_ns = (
        f"bench-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("bare", "op", "backlog")
    )
    for namespace in (bare_ns, operator_ns, backlog_ns):
        prepare_namespace(kubeconfig, namespace)
    database = asyncio.run(scratch_database(stack_env["DATABASE_URL"]))
    env = {
        **stack_env,
        "DATABASE_URL": database,
        "GENVID_GLOBAL_MAX_ACTIVE": "1000000",
        "GENVID_USER_MAX_ACTIVE": "1000000",
        "GENVID_RATE_LIMITS": "off",
        "GENVID_USER_DAILY_BUDGET_USD": "1000000",
        "GENVID_GLOBAL_DAILY_BUDGET_USD": "100000000",
    }
    apps.migrate(env)
    state = State(root / "pipeline")
    state.prepare()
    operators = [apps.start_operator(state, env, operator_ns)]
    port = state.port("api")
    api_process = apps.start_api(state, env, operator_ns, port)
    try:
        controllers = stack_pid(root, "kube-controller-manager")
        operator_pids = [operators[0].pid]
        meter = CpuMeter(operator_pids, api_process.pid)

        def start_backlog_operator() -> None:
            operators.append(apps.start_operator(state, env, backlog_ns))
            operator_pids.append(operators[-1].pid)

        async def measure() -> dict[str, Any]:
            async with kube(str(kubeconfig)) as api:
                # The Job controller paused while Jobs are counted: it would try to make each
                # Job's pod (refused by the quota), and the bare client's Jobs are all made
                # before it catches up while the operator's slower window would hold that work.
                with paused(controllers):
                    with meter.window("bare") as counted:
                        counted.count = args.jobs
                        bare = await bare_rate(api, bare_ns, args.jobs)
                    with meter.window("burst") as counted:
                        counted.count = args.jobs
                        dispatched = await operator_rate(api, operator_ns, args.jobs)
                posts, to_job, refused = await post_latencies(
                    api, f"http://127.0.0.1:{port}", operator_ns, args.rate, args.seconds
                )
                # One operator at a time (its metrics and liveness ports are the stack's).
                await asyncio.to_thread(operators[0].stop)
                with paused(controllers):
                    backlog, backlog_start = await backlog_rate(
                        api, backlog_ns, args.jobs, start_backlog_operator, meter
                    )
            return {
                "bare": bare,
                "operator": dispatched,
                "backlog": backlog,
                "backlog_start": backlog_start,
                "posts": posts,
                "to_job": to_job,
                "refused": refused,
                "cpu_per_job_ms": meter.windows,
            }

        return asyncio.run(measure())
    finally:
        api_process.stop()
        for operator in operators:
            operator.stop()


def write(results: dict[str, Any], args: argparse.Namespace) -> None:
    bare, dispatched, backlog = results["bare"], results["operator"], results["backlog"]
    posts = [s * 1000 for s in results["posts"]]
    to_job = [s * 1000 for s in results["to_job"]]
    rate_baseline = "a bare kubernetes_asyncio client creating the same Jobs, this run"
    latency_baseline = "POST /generate's own latency, this run"
    p50_post, p99_post = statistics.median(posts), _quantile(posts, 0.99)
    p50_job, p99_job = statistics.median(to_job), _quantile(to_job, 0.99)
    figures = [
        figure("bare client Job creation", bare, "/s", None, None, ""),
        figure(
            "operator dispatch (burst of resources)",
            dispatched,
            "/s",
            rate_baseline,
            dispatched / bare,
            ">= 50 % of the bare client",
        ),
        figure(
            BACKLOG_FIGURE,
            backlog,
            "/s",
            rate_baseline,
            backlog / bare,
            ">= 50 % of the bare client",
        ),
        figure("POST /generate p50", p50_post, "ms", None, None, ""),
        figure("POST /generate p99", p99_post, "ms", None, None, ""),
        figure("POST -> Job exists p50", p50_job, "ms", latency_baseline, p50_job / p50_post, ""),
        figure(
            "POST -> Job exists p99",
            p99_job,
            "ms",
            latency_baseline,
            p99_job / p99_post,
            f"<= {P99_TARGET_MS} ms at 20 requests/s",
        ),
    ]
    cpu = results["cpu_per_job_ms"]
    bare_machine, backlog_machine = sum(cpu["bare"].values()), sum(cpu["backlog"].values())
    machine_baseline = "the whole run's CPU per Job created by the bare client, this run"
    figures += [
        figure(
            "apiserver CPU per Job, bare client", cpu["bare"]["apiserver"], "ms", None, None, ""
        ),
        figure(
            "apiserver CPU per Job, operator backlog",
            cpu["backlog"]["apiserver"],
            "ms",
            "the apiserver's CPU per Job created by the bare client, this run",
            cpu["backlog"]["apiserver"] / cpu["bare"]["apiserver"],
            "",
        ),
        figure(
            "operator CPU per Job, backlog",
            cpu["backlog"]["operator"],
            "ms",
            "the bare client's own CPU per Job (requests and watch), this run",
            cpu["backlog"]["operator"] / cpu["bare"]["bench client"],
            "",
        ),
        figure("all processes' CPU per Job, bare client", bare_machine, "ms", None, None, ""),
        figure(
            "all processes' CPU per Job, operator backlog",
            backlog_machine,
            "ms",
            machine_baseline,
            backlog_machine / bare_machine,
            "",
        ),
        figure(
            "all processes' CPU per Job, operator burst",
            sum(cpu["burst"].values()),
            "ms",
            machine_baseline,
            sum(cpu["burst"].values()) / bare_machine,
            "",
        ),
    ]
    doc = {
        "benchmark": "dispatch",
        "title": "Operator dispatch: Job-creation rate and POST -> Job latency",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_text(),
        "figures": figures,
        "notes": [
            f"{args.jobs} Jobs per rate measurement, {CONCURRENCY} requests in flight; "
            f"{len(to_job)} POSTs at {args.rate:g}/s over {args.seconds:g} s, one user per 10.",
            "Everything (etcd, apiserver, controller-manager, Postgres, NATS, api, operator, "
            "this client) runs on one machine whose 2 cores are shared with other work.",
            "No worker runs: a ResourceQuota of zero pods keeps the Jobs without pods.",
            "kube-controller-manager is paused (SIGSTOP) during the three rate measurements: "
            "its Job controller would try to make every Job's pod (refused by the quota); the "
            "bare client's Jobs all exist before it catches up, while the operator's longer "
            "window would hold that work. POST -> Job latency is measured with it running.",
            "A dispatched generation costs the apiserver three writes (its Job, the "
            "transition's status patch, its Kubernetes Event; a fourth in the burst: the "
            "VideoGeneration itself) and two watched resources where the bare client makes one "
            "write. CPU per Job counts every process of the run (stack, operator, api, this "
            "client) by component over each rate window, divided by the Jobs made in it "
            "(dispatch-cpu.svg). With both cores busy the rate ratio is about the inverse of "
            f"the CPU ratio: the backlog's x{backlog_machine / bare_machine:.2f} of the bare "
            f"client's CPU per Job bounds its rate near {bare_machine / backlog_machine:.0%} "
            f"of the bare client's; the apiserver alone needs "
            f"{cpu['backlog']['apiserver']:.2f} ms per dispatched Job against the bare "
            f"client's {bare_machine:.2f} ms for everything.",
            "A Job's time is when a watch of this process first saw it.",
            f"{BACKLOG_FIGURE}: {args.jobs} VideoGenerations created while no operator "
            f"watched their namespace, then an operator started; the rate is {args.jobs} over "
            "the time from its first Job to its last, so its start-up is left out (it took "
            f"{results['backlog_start']:.1f} s from its start to its first Job).",
            f"{len(results['refused'])} POSTs not accepted (left out of the latencies)"
            + (f", e.g. {results['refused'][0]}" if results["refused"] else ""),
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dispatch.json").write_text(json.dumps(doc, indent=2) + "\n")
    cdf_chart(
        RESULTS / "dispatch-latency.svg",
        f"POST /generate at {args.rate:g}/s: latency CDF (p99 to Job {p99_job:.0f} ms)",
        "ms",
        {"POST -> Job exists": to_job, "POST answered": posts},
    )
    bar_chart(
        RESULTS / "dispatch-rates.svg",
        f"Jobs created per second: operator at {dispatched / bare:.0%} (burst) and "
        f"{backlog / bare:.0%} (backlog) of a bare client",
        "/s",
        {
            "bare client": (bare,),
            "operator, burst of resources": (dispatched,),
            "operator, backlog (first to last Job)": (backlog,),
        },
        ("Jobs/s",),
    )
    bar_chart(
        RESULTS / "dispatch-cpu.svg",
        "CPU per Job created, by process (ms)",
        "ms",
        {
            component: tuple(cpu[window][component] for window in ("bare", "burst", "backlog"))
            for component in COMPONENTS
        },
        ("bare client", "operator, burst", "operator, backlog"),
    )
    for item in figures:
        ratio = f"  (x{item['ratio']:.2f})" if item["ratio"] is not None else ""
        print(f"{item['name']:<40} {item['value']:10.1f} {item['unit']}{ratio}")


if __name__ == "__main__":
    main()
