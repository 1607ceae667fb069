"""What admission control costs: POST /generate's transaction with and without the budget
reservation, and the operator's admission pass at the cap.

Runs on a throwaway PostgreSQL of the dev stack's (the same wheel), migrated to head, with the
api's and the operator's own code (`genvid_api.queries.generations.insert` +
`genvid_api.budgets.reserve`, `genvid_operator.admission.Admissions`), so the figures are the
database work the request and the operator add; the HTTP layer is the same with budgets on or
off. Both variants run in the same process against the same server, interleaved in rounds, so
machine load hits both alike, and the reservation's cost is given as a ratio to the POST without
it in the same run (p50 over p50, p99 over p99, and the median of the per-round ratios), which
compares across machines where milliseconds do not.

    .venv/bin/python -m bench.admission [--quick] [--requests N] [--waiting N]

Prints p50 / p99 in milliseconds and the ratios, and writes bench/results/admission.json (the
benchmark convention's figures, the raw quantiles under "details") and
bench/results/admission.svg (a bar chart of the same figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from bench.report import machine_text
from bench.svg import bar_chart
from genvid_api import budgets
from genvid_api.config import Settings
from genvid_api.db import create_session_factory
from genvid_api.models import Generation, GenerationCreate
from genvid_api.queries import generations
from genvid_contracts.resource import DEFAULT_MODEL
from genvid_devstack import apps
from genvid_devstack.postgres import start_postgres
from genvid_operator.admission import Admissions

RESULTS = Path(__file__).resolve().parent / "results"
GLOBAL_CAP, USER_CAP = 10, 2


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "n": len(ordered),
    }


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


async def users(url: str, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    connection = await asyncpg.connect(url)
    try:
        await connection.executemany(
            "INSERT INTO users (id, email, username, hashed_password) VALUES ($1, $2, $3, 'x')",
            [(i, f"{i.hex}@example.com", f"u{i.hex[:20]}") for i in ids],
        )
    finally:
        await connection.close()
    return ids


async def post_costs(url: str, requests: int) -> dict[str, dict[str, float]]:
    """generations.insert as POST /generate runs it, with and without the reservation."""
    base = {"database_url": url, "jwt_secret": "x" * 40, "generate_per_minute": 0}
    variants = {
        "post_without_reservation": Settings.model_validate({**base, "budgets_enabled": False}),
        "post_with_reservation": Settings.model_validate(
            {**base, "user_daily_budget_usd": "1000000", "global_daily_budget_usd": "1000000"}
        ),
    }
    engine = create_async_engine(variants["post_with_reservation"].async_database_url)
    sessions = create_session_factory(engine)
    owners = await users(url, 50)
    request = GenerationCreate(
        prompt="a bench fox", model=DEFAULT_MODEL, duration_seconds=4, aspect_ratio="16:9"
    )
    samples: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for n in range(requests):
            for name, settings in variants.items():
                owner = owners[n % len(owners)]

                async def post(settings: Settings = settings, owner: uuid.UUID = owner) -> None:
                    async with sessions() as session:

                        async def reserve(generation: Generation) -> None:
                            await budgets.reserve(session, settings, generation, datetime.now(UTC))

                        await generations.insert(session, owner, request, None, reserve)

                samples[name].append(await timed(post))
    finally:
        await engine.dispose()
    warm = {name: values[requests // 10 :] for name, values in samples.items()}
    return {name: quantiles(values) for name, values in warm.items()} | {
        "post_reservation_ratio": ratios(
            warm["post_with_reservation"], warm["post_without_reservation"]
        )
    }


def ratios(measured: list[float], baseline: list[float]) -> dict[str, float]:
    """`measured` against `baseline`, sampled in the same rounds (pairs by index)."""
    ours, theirs = quantiles(measured), quantiles(baseline)
    return {
        "p50": round(ours["p50_ms"] / theirs["p50_ms"], 3),
        "p99": round(ours["p99_ms"] / theirs["p99_ms"], 3),
        "paired_median": round(
            statistics.median(a / b for a, b in zip(measured, baseline, strict=True)), 3
        ),
    }


def plot(results: dict[str, dict[str, float]], path: Path) -> None:
    latencies = {
        name.replace("_", " "): (figures["p50_ms"], figures["p99_ms"])
        for name, figures in results.items()
        if "p50_ms" in figures
    }
    ratio = results["post_reservation_ratio"]
    title = (
        f"Admission control, ms; POST with / without the reservation: "
        f"x{ratio['p50']:.2f} p50, x{ratio['p99']:.2f} p99"
    )
    bar_chart(path, title, "ms", latencies, ("p50", "p99"))


async def admission_at_cap(url: str, waiting: int, rounds: int) -> dict[str, dict[str, float]]:
    """A pass with the global cap full and `waiting` rows in line (it only writes positions),
    and a pass that admits the next one after a finish."""
    owners = await users(url, 40)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    admissions = Admissions(pool, GLOBAL_CAP, USER_CAP)
    full: list[float] = []
    after_finish: list[float] = []
    try:
        await pool.execute("UPDATE video_generation_jobs SET settled_at = now()")
        await pool.executemany(
            "INSERT INTO video_generation_jobs (id, user_id, prompt, model, duration_seconds, "
            "aspect_ratio, created_at) VALUES ($1, $2, 'a queued fox', "
            "'veo-3.0-fast-generate-001', 4, '16:9', now() + $3 * interval '1 millisecond')",
            [(uuid.uuid4(), owners[n % len(owners)], n) for n in range(waiting + GLOBAL_CAP)],
        )
        assert len(await admissions.admit()) == GLOBAL_CAP
        for _ in range(rounds):
            full.append(await timed(admissions.admit))
            await pool.execute(
                "UPDATE video_generation_jobs SET settled_at = now() WHERE id = ("
                "SELECT id FROM video_generation_jobs WHERE admitted_at IS NOT NULL "
                "AND settled_at IS NULL LIMIT 1)"
            )
            after_finish.append(await timed(admissions.admit))
    finally:
        await pool.close()
    return {
        f"admission_pass_at_cap_{waiting}_waiting": quantiles(full),
        f"admission_pass_admitting_one_{waiting}_waiting": quantiles(after_finish),
    }


def convention(results: dict[str, dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    """The figures in the shape every pipeline benchmark writes (bench/summary.py reads it):
    the reservation against the POST without it, the admission passes against that POST."""
    without = results["post_without_reservation"]
    measured = [
        ("POST transaction with the budget reservation", results["post_with_reservation"]),
        *((name.replace("_", " "), q) for name, q in results.items() if name.startswith("adm")),
    ]
    figures: list[dict[str, Any]] = []
    for name, quantiles_ms in measured:
        for quantile in ("p50", "p99"):
            base = without[f"{quantile}_ms"]
            figures.append(
                {
                    "name": f"{name} {quantile}",
                    "value": quantiles_ms[f"{quantile}_ms"],
                    "unit": "ms",
                    "baseline": f"POST transaction without the reservation, same run ({base} ms)",
                    "ratio": round(quantiles_ms[f"{quantile}_ms"] / base, 3),
                    "target": None,
                }
            )
    return {
        "benchmark": "admission",
        "title": "What admission control costs: the budget reservation and the admission pass",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_text(),
        "figures": figures,
        "notes": [
            f"{args.requests} POSTs per variant, interleaved; {args.waiting} rows waiting at the "
            f"cap, {args.rounds} passes per kind; database work only (the api's and the "
            "operator's own code on a throwaway PostgreSQL).",
            "A shared 2-core machine: other people's jobs run beside it.",
        ],
        "details": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 POSTs, 50 waiting, 20 rounds")
    parser.add_argument("--requests", type=int, help="POSTs per variant (500)")
    parser.add_argument("--waiting", type=int, help="rows waiting at the cap (200)")
    parser.add_argument("--rounds", type=int, help="admission passes per kind (100)")
    args = parser.parse_args()
    args.requests = args.requests or (100 if args.quick else 500)
    args.waiting = args.waiting or (50 if args.quick else 200)
    args.rounds = args.rounds or (20 if args.quick else 100)
    with tempfile.TemporaryDirectory(prefix="genvid-bench-admission-") as folder:
        root = Path(folder)
        postgres = start_postgres(root, root / "logs")
        try:
            apps.migrate({"DATABASE_URL": postgres.url})
            results = asyncio.run(post_costs(postgres.url, args.requests))
            results |= asyncio.run(admission_at_cap(postgres.url, args.waiting, args.rounds))
        finally:
            postgres.process.stop()
    RESULTS.mkdir(exist_ok=True)
    doc = convention(results, args)
    (RESULTS / "admission.json").write_text(json.dumps(doc, indent=2) + "\n")
    plot(results, RESULTS / "admission.svg")
    ratio = results.pop("post_reservation_ratio")
    width = max(len(name) for name in results)
    for name, figures in results.items():
        print(f"{name:<{width}}  p50 {figures['p50_ms']:8.3f} ms  p99 {figures['p99_ms']:8.3f} ms")
    print(
        f"POST with the reservation / without: p50 x{ratio['p50']:.2f}, p99 x{ratio['p99']:.2f}, "
        f"median of the pairs x{ratio['paired_median']:.2f}"
    )
    print(f"plot: {RESULTS / 'admission.svg'}")


if __name__ == "__main__":
    main()
