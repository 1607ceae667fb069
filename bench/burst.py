"""Platform efficiency: a burst of synthetic generations through the whole local stack, against
the same worker runs started directly, in the same run.

What the platform adds to the work itself (the api, admission, the operator, Jobs, the kubelet,
status mirroring and events) is easiest to judge against the work alone: the same number of
worker processes, with the same synthetic generator, bucket and concurrency, started by a plain
loop. Both halves run on the same stack in one run, so the machine's load hits both alike.

    .venv/bin/python -m bench.burst [--quick] [--generations N] [--users N]

1. The local stack exactly as `make up` runs it (`python -m genvid_devstack run`), in a
   throwaway state folder with dynamic ports: control plane, process kubelet, PostgreSQL, NATS,
   fake-gcs-server, the operator and the api with their default caps.
2. Platform (between the two direct runs): `--users` accounts each open `GET /events`, then
   the `--generations` `POST /generate` go out at once from all users together, each user's
   one after the other (as one browser sends them; a 503 is retried after its Retry-After with
   the same Idempotency-Key, and counted), and the run lasts until every generation's terminal
   event has arrived. The platform's concurrency is
   the operator's global cap (or twice the users, if fewer: the per-user cap), as admission
   allows.
3. Direct, once before the platform's burst and once after: the same number of
   `python -m genvid_worker` processes, with the arguments the operator's Job gives
   (`genvid_operator.jobspec.worker_args`) and the worker's ConfigMap settings, at most that
   many at a time. The machine is shared and its load moves, so the baseline is the mean of the
   two and both are stated.

Figures: platform efficiency = direct time / platform time; per generation, POST -> RUNNING
seen (waiting for capacity included), admitted -> RUNNING seen (the dispatch: operator, Job,
kubelet, mirror, event), worker done -> terminal seen (the worker's `result.json` stored in the
bucket, the last thing it does, to the terminal event), each against the median direct worker
run. Writes `bench/results/burst.json` and `bench/results/burst.svg` (when each generation
finished, platform against direct).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from bench.accounts import Auth, register
from bench.config import RESULTS
from bench.report import machine_text
from bench.svg import cdf_chart
from genvid_contracts.pricing import DEFAULT_PRICES_USD_PER_SECOND
from genvid_contracts.resource import VideoGenerationSpec
from genvid_contracts.status import TERMINAL_STATUSES
from genvid_contracts.worker import DEFAULT_MODEL, result_object
from genvid_devstack.process import Process, spawn
from genvid_devstack.stack import read_env_file
from genvid_operator.config import Settings as OperatorSettings
from genvid_operator.jobspec import worker_args

_STACK_START_SECONDS = 1800  # a cold machine builds the control-plane binaries first
_DURATION_SECONDS = 4
_POST_ATTEMPTS = 30


@dataclass(frozen=True)
class Burst:
    generations: int
    users: int
    timeout_seconds: float

    @property
    def concurrency(self) -> int:
        """What admission lets run at once with the operator's default caps."""
        fields = OperatorSettings.model_fields
        global_cap = int(fields["global_max_active"].default)
        user_cap = int(fields["user_max_active"].default)
        return min(global_cap, user_cap * self.users, self.generations)


@dataclass
class Generation:
    """One generation through the platform, times from time.time() (the database's clock is
    the same machine's)."""

    prompt: str
    posted_at: float = 0.0
    id: str = ""
    running_seen: float | None = None
    terminal_seen: float | None = None
    status: str = ""
    admitted_at: float | None = None
    worker_done: float | None = None
    unavailable: int = 0  # 503 answers to its POST, each retried


@dataclass(kw_only=True)
class Run:
    """One way of running the 100: when it began, the machine's load then, and each worker's
    own generating time (from its log)."""

    started: float
    load_average: float
    generating: list[float] = field(default_factory=list)


@dataclass(kw_only=True)
class PlatformRun(Run):
    generations: list[Generation]
    most_running: int = 0


@dataclass(kw_only=True)
class DirectRun(Run):
    ends: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def seconds(self) -> float:
        return max(self.ends) - self.started


@dataclass
class Baseline:
    """The direct runs before and after the platform's burst: the machine is shared, and its
    load moves between the halves, so the baseline is their mean and both are stated."""

    before: DirectRun
    after: DirectRun

    @property
    def seconds(self) -> float:
        return (self.before.seconds + self.after.seconds) / 2

    @property
    def worker_median(self) -> float:
        return statistics.median([*self.before.durations, *self.after.durations])

    @property
    def generating(self) -> list[float]:
        return [*self.before.generating, *self.after.generating]


def prompts(count: int) -> list[str]:
    return [f"a bench fox crossing a snowy field, take {n + 1}" for n in range(count)]


def start_stack(root: Path) -> tuple[Process, dict[str, str]]:
    """The stack as `make up` starts it; the caps left at their defaults, which the direct
    runs' concurrency is taken from."""
    unset = ("KUBECONFIG", "DATABASE_URL", "GENVID_GLOBAL_MAX_ACTIVE", "GENVID_USER_MAX_ACTIVE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    stack = spawn(
        "stack",
        [sys.executable, "-m", "genvid_devstack", "run", f"--state-dir={root / 'state'}"],
        log_dir=root,
        env=env,
    )
    deadline = time.monotonic() + _STACK_START_SECONDS
    while not (root / "state" / "ready").exists():
        if not stack.alive() or time.monotonic() > deadline:
            stack.stop(timeout=60)
            raise RuntimeError(f"the local stack did not start:\n{stack.log_tail(60)}")
        time.sleep(0.5)
    return stack, read_env_file(root / "state" / "env")


async def watch(
    http: httpx.AsyncClient,
    auth: Auth,
    by_id: dict[str, Generation],
    opened: asyncio.Event,
) -> None:
    """Note when each transition of this user's generations arrives over `GET /events`."""
    headers = auth
    async with http.stream("GET", "/events", headers=headers, timeout=None) as response:
        response.raise_for_status()
        opened.set()
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            arrived = time.time()
            event = json.loads(line.removeprefix("data:"))
            generation = by_id.get(event["id"])
            if generation is None:  # the event outran the POST's response: keep it for later
                generation = by_id.setdefault(event["id"], Generation(prompt=""))
            if event["status"] == "RUNNING" and generation.running_seen is None:
                generation.running_seen = arrived
            if event["status"] in TERMINAL_STATUSES and generation.terminal_seen is None:
                generation.terminal_seen = arrived
                generation.status = event["status"]


async def post(
    http: httpx.AsyncClient,
    auth: Auth,
    generation: Generation,
    by_id: dict[str, Generation],
) -> None:
    """POST /generate as a careful client does: a 503 (the api's database pool was busy) is
    retried after its Retry-After with the same Idempotency-Key, so nothing is created twice."""
    headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}
    body = {"prompt": generation.prompt, "duration_seconds": _DURATION_SECONDS}
    generation.posted_at = time.time()
    for _ in range(_POST_ATTEMPTS):
        response = await http.post("/generate", json=body, headers=headers)
        if response.status_code != 503:
            break
        generation.unavailable += 1
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    if response.status_code != 202:
        raise RuntimeError(f"POST /generate: {response.status_code} {response.text}")
    generation.id = response.json()["id"]
    early = by_id.get(generation.id)
    if early is not None:  # its events came first
        generation.running_seen = early.running_seen
        generation.terminal_seen = early.terminal_seen
        generation.status = early.status
    by_id[generation.id] = generation


async def posts(
    http: httpx.AsyncClient,
    auth: Auth,
    mine: list[Generation],
    by_id: dict[str, Generation],
) -> None:
    """One user's generations, one POST after the other, as one person's browser sends them:
    the users are concurrent, each user's requests are not."""
    for generation in mine:
        await post(http, auth, generation, by_id)


async def platform(env: dict[str, str], burst: Burst) -> PlatformRun:
    limits = httpx.Limits(max_connections=burst.generations + burst.users + 10)
    async with httpx.AsyncClient(
        base_url=env["GENVID_API_URL"], timeout=300, trust_env=False, limits=limits
    ) as http:
        users = [await register(http, "burst") for _ in range(burst.users)]
        by_id: dict[str, Generation] = {}
        opened = [asyncio.Event() for _ in users]
        watchers = [
            asyncio.create_task(watch(http, auth, by_id, ready))
            for auth, ready in zip(users, opened, strict=True)
        ]
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(ready.wait() for ready in opened))
            generations = [Generation(prompt=text) for text in prompts(burst.generations)]
            run = PlatformRun(
                started=time.time(), load_average=os.getloadavg()[0], generations=generations
            )
            await asyncio.gather(
                *(
                    posts(http, auth, generations[n :: len(users)], by_id)
                    for n, auth in enumerate(users)
                )
            )
            deadline = time.monotonic() + burst.timeout_seconds
            while any(g.terminal_seen is None for g in generations):
                if time.monotonic() > deadline:
                    raise RuntimeError("the burst did not finish before --timeout")
                for watcher in watchers:
                    if watcher.done():
                        watcher.result()  # raises what ended it
                        raise RuntimeError("an event stream ended")
                running = sum(
                    1 for g in generations if g.running_seen is not None and g.terminal_seen is None
                )
                run.most_running = max(run.most_running, running)
                await asyncio.sleep(0.2)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        await admitted_times(env["DATABASE_URL"], generations)
        await worker_done_times(http, env, generations)
    return run


async def admitted_times(database_url: str, generations: list[Generation]) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT id::text, admitted_at FROM video_generation_jobs WHERE id = ANY($1::uuid[])",
            [g.id for g in generations],
        )
    finally:
        await connection.close()
    admitted = {row["id"]: row["admitted_at"] for row in rows}
    for generation in generations:
        if (at := admitted.get(generation.id)) is not None:
            generation.admitted_at = at.timestamp()


async def worker_done_times(
    http: httpx.AsyncClient, env: dict[str, str], generations: list[Generation]
) -> None:
    """When each worker stored its result (fake-gcs-server's timeCreated, in microseconds)."""
    bucket = env["GENVID_BUCKET"]
    for generation in generations:
        name = quote(result_object(generation.id), safe="")
        response = await http.get(f"{env['STORAGE_EMULATOR_HOST']}/storage/v1/b/{bucket}/o/{name}")
        if response.status_code == 200:
            created = datetime.fromisoformat(response.json()["timeCreated"])
            generation.worker_done = created.timestamp()


async def direct(env: dict[str, str], burst: Burst, folder: Path) -> DirectRun:
    """The same worker runs without the platform: a plain loop, `concurrency` at a time."""
    worker_env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": os.environ.get("HOME", "/root"),
        "GENVID_BUCKET": env["GENVID_BUCKET"],
        "STORAGE_EMULATOR_HOST": env["STORAGE_EMULATOR_HOST"],
        "GENVID_PROVIDER": "synthetic",
    }
    price = DEFAULT_PRICES_USD_PER_SECOND[DEFAULT_MODEL]
    slots = asyncio.Semaphore(burst.concurrency)
    run = DirectRun(started=time.time(), load_average=os.getloadavg()[0])

    async def one(prompt: str) -> None:
        job_id = str(uuid.uuid4())
        spec = VideoGenerationSpec(
            prompt=prompt,
            model=DEFAULT_MODEL,
            durationSeconds=_DURATION_SECONDS,
            aspectRatio="16:9",
            owner="bench",
            cancel=False,
        )
        args = [*worker_args(job_id, spec, price), f"--termination_log={folder / job_id}"]
        async with slots:
            began = time.time()
            with (folder / f"{job_id}.log").open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "genvid_worker",
                    *args,
                    env=worker_env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                )
                code = await process.wait()
            ended = time.time()
        run.ends.append(ended)
        run.durations.append(ended - began)
        run.failures += code != 0

    await asyncio.gather(*(one(prompt) for prompt in prompts(burst.generations)))
    return run


def generating_seconds(logs: Sequence[Path]) -> list[float]:
    """From each worker's log, generation.started to generation.finished: the work itself,
    without the interpreter's start, to compare the two halves' machine."""
    found = []
    for path in logs:
        stamps: dict[str, datetime] = {}
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                stamps[entry["event"]] = datetime.fromisoformat(entry["ts"])
        if "generation.started" in stamps and "generation.finished" in stamps:
            took = stamps["generation.finished"] - stamps["generation.started"]
            found.append(took.total_seconds())
    return found


def quantile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def figures(burst: Burst, run: PlatformRun, baseline: Baseline) -> list[dict[str, Any]]:
    generations = run.generations
    platform_seconds = max(g.terminal_seen or 0.0 for g in generations) - run.started
    direct_seconds = baseline.seconds
    worker_median = baseline.worker_median
    direct_text = (
        f"the same {burst.generations} worker runs started directly, "
        f"{burst.concurrency} at a time ({direct_seconds:.1f} s: mean of "
        f"{baseline.before.seconds:.1f} s before and {baseline.after.seconds:.1f} s after)"
    )
    worker_text = f"median direct worker run ({worker_median:.2f} s)"
    found: list[dict[str, Any]] = [
        {
            "name": f"{burst.generations} generations all terminal through the platform",
            "value": round(platform_seconds, 2),
            "unit": "s",
            "baseline": direct_text,
            "ratio": round(platform_seconds / direct_seconds, 3),
            "target": None,
        },
        {
            "name": "platform efficiency (direct time / platform time)",
            "value": round(direct_seconds / platform_seconds, 3),
            "unit": "ratio",
            "baseline": direct_text,
            "ratio": round(direct_seconds / platform_seconds, 3),
            "target": None,
        },
    ]
    spans = {
        "POST -> RUNNING seen (capacity wait included)": [
            g.running_seen - g.posted_at for g in generations if g.running_seen is not None
        ],
        "admitted -> RUNNING seen (dispatch)": [
            g.running_seen - g.admitted_at
            for g in generations
            if g.running_seen is not None and g.admitted_at is not None
        ],
        "worker done -> terminal seen": [
            g.terminal_seen - g.worker_done
            for g in generations
            if g.terminal_seen is not None and g.worker_done is not None
        ],
    }
    for name, values in spans.items():
        if not values:
            continue
        for label, share in (("p50", 0.5), ("p99", 0.99)):
            value = quantile(values, share)
            found.append(
                {
                    "name": f"{name} {label}",
                    "value": round(value, 3),
                    "unit": "s",
                    "baseline": worker_text,
                    "ratio": round(value / worker_median, 3),
                    "target": None,
                }
            )
    if run.generating and baseline.generating:
        direct_median = statistics.median(baseline.generating)
        found.append(
            {
                "name": "worker's own generating time p50, platform (log: started -> finished)",
                "value": round(statistics.median(run.generating), 3),
                "unit": "s",
                "baseline": f"the same in the direct runs ({direct_median:.2f} s)",
                "ratio": round(statistics.median(run.generating) / direct_median, 3),
                "target": None,
            }
        )
    retried = sum(g.unavailable for g in generations)
    found.append(
        {
            "name": "POST /generate answered 503 and retried after Retry-After",
            "value": retried,
            "unit": "count",
            "baseline": f"the {burst.generations} POSTs",
            "ratio": round(retried / burst.generations, 3),
            "target": None,
        }
    )
    found.append(
        {
            "name": "most generations RUNNING at once (platform)",
            "value": run.most_running,
            "unit": "count",
            "baseline": f"direct concurrency ({burst.concurrency})",
            "ratio": round(run.most_running / burst.concurrency, 3),
            "target": None,
        }
    )
    return found


def write(burst: Burst, run: PlatformRun, baseline: Baseline, mode: str) -> Path:
    failed = [g for g in run.generations if g.status != "SUCCEEDED"]
    doc = {
        "benchmark": "burst",
        "title": f"A burst of {burst.generations} synthetic generations, platform against direct",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_text(),
        "figures": figures(burst, run, baseline),
        "notes": [
            f"{mode} run: {burst.generations} POST /generate from {burst.users} users at once "
            f"({burst.generations // burst.users} each, one after the other), the operator's "
            f"default caps ({burst.concurrency} at a time); the direct baseline ran the same "
            "number of `python -m genvid_worker` processes with the operator's arguments, "
            f"{burst.concurrency} at a time, once right before the burst and once right "
            "after, on the same idle stack; the baseline is the mean of the two.",
            "Everything (control plane, process kubelet, PostgreSQL, NATS, fake-gcs-server, "
            "operator, api, workers, this client) shares one machine of "
            f"{machine_text()} with other people's jobs; 1-minute load average at the start "
            f"of direct before / platform / direct after: {baseline.before.load_average:.1f} / "
            f"{run.load_average:.1f} / {baseline.after.load_average:.1f}.",
            f"Not SUCCEEDED through the platform: {len(failed)}; direct runs that failed: "
            f"{baseline.before.failures + baseline.after.failures}.",
            "Times are when this client saw each event over GET /events; admitted_at is "
            "PostgreSQL's, worker done is fake-gcs-server's timeCreated of result.json (the "
            "worker's last write): one machine, one clock.",
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "burst.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    platform_done = [g.terminal_seen - run.started for g in run.generations if g.terminal_seen]
    cdf_chart(
        RESULTS / "burst.svg",
        f"{burst.generations} generations: when each finished, from the start of the burst",
        "seconds since the burst began",
        {
            "through the platform": platform_done,
            "direct, before": [end - baseline.before.started for end in baseline.before.ends],
            "direct, after": [end - baseline.after.started for end in baseline.after.ends],
        },
        y_label="share of the generations finished",
    )
    return path


def parse_args(argv: Sequence[str] | None = None) -> tuple[Burst, str, bool]:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 generations from 5 users")
    parser.add_argument("--generations", type=int, help="default 100 (20 with --quick)")
    parser.add_argument("--users", type=int, help="default 20 (5 with --quick)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the burst")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args(argv)
    generations = args.generations or (20 if args.quick else 100)
    users = args.users or (5 if args.quick else 20)
    if generations < 1 or not 1 <= users <= generations:
        parser.error("at least one generation, and between 1 and that many users")
    mode = "quick" if args.quick else "full"
    burst = Burst(generations=generations, users=users, timeout_seconds=args.timeout)
    return burst, mode, args.keep


def main(argv: Sequence[str] | None = None) -> int:
    burst, mode, keep = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="genvid-bench-burst-"))
    root.chmod(0o755)  # PostgreSQL runs as `nobody` when we are root
    (root / "state").mkdir()
    (root / "state").chmod(0o755)
    stack: Process | None = None
    failed = True
    try:
        print(f"burst: starting the local stack in {root}", flush=True)
        stack, env = start_stack(root)
        (root / "direct").mkdir()
        print(f"burst: direct, {burst.generations} worker runs", flush=True)
        before = asyncio.run(direct(env, burst, root / "direct"))
        before.generating = generating_seconds(sorted((root / "direct").glob("*.log")))
        (root / "direct-after").mkdir()
        print(f"burst: platform, {burst.generations} generations", flush=True)
        run = asyncio.run(platform(env, burst))
        pods = root / "state" / "kubelet" / "pods"
        run.generating = generating_seconds(sorted(pods.glob("*/worker.log")))
        print(f"burst: direct again, {burst.generations} worker runs", flush=True)
        after = asyncio.run(direct(env, burst, root / "direct-after"))
        after.generating = generating_seconds(sorted((root / "direct-after").glob("*.log")))
        path = write(burst, run, Baseline(before, after), mode)
        failed = False
    except (RuntimeError, httpx.HTTPError, asyncpg.PostgresError) as error:
        print(f"burst: failed: {error!r}", file=sys.stderr)
        if stack is not None:
            print(stack.log_tail(40), file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop(timeout=60)
        if failed or keep:
            print(f"burst: logs kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    for figure in json.loads(path.read_text())["figures"]:
        print(f"{figure['name']}: {figure['value']} {figure['unit']} (x{figure['ratio']})")
    print(f"burst: wrote {path} and {path.with_suffix('.svg')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
