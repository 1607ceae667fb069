"""The timed run: warm-up, then every operation sequentially and at the chosen concurrency,
the statements' server-side time and the plans."""

from __future__ import annotations

import gc
import time
from typing import Any

import httpx

from bench.config import BENCH_PASSWORD, SLOW_STATEMENT_MS, Options
from bench.explain import auto_explain_blocks, reset_statement_stats, top_statements, traced_plans
from bench.load import (
    Probes,
    Row,
    Workload,
    like_pairs,
    phases,
    run_phase,
)
from bench.report import row_text
from bench.services import Services


async def measure(
    services: Services, opts: Options, work: Workload
) -> tuple[list[Row], list[dict[str, Any]], str, float, int]:
    """Warm up, then every phase sequentially and at opts.concurrency.

    Returns the rows, the top statements (pg_stat_statements), the plans (slow statements and
    traced requests), the latency of one real login (argon2, checks the seeded password hash)
    and the number of statements slower than SLOW_STATEMENT_MS.
    """
    assert services.api is not None and services.postgres is not None
    pids = Probes(services.api.pid, services.postgres.process.pid, services.gc_file)
    n = opts.requests
    limits = httpx.Limits(max_connections=opts.concurrency + 2, max_keepalive_connections=16)
    async with httpx.AsyncClient(
        base_url=services.api_url, timeout=60.0, limits=limits, trust_env=False
    ) as client:
        login_started = time.perf_counter()
        login = await client.post(
            "/auth/token", data={"username": "bench_user_0", "password": BENCH_PASSWORD}
        )
        login_ms = (time.perf_counter() - login_started) * 1000.0
        if login.status_code != 200:
            raise SystemExit(f"bench: login with the seeded password failed: {login.text}")

        url = services.database_url
        # The workload's ~10^5 long-lived objects out of the collector's way: a full collection
        # of them in this process would stall every request in flight and count as latency.
        gc.collect()
        gc.freeze()
        print(f"measure: warm-up ({opts.warmup} requests per operation) ...", flush=True)
        for phase in phases(
            work, opts.warmup, opts.deep_pages, await like_pairs(url, work, opts.warmup)
        ):
            await run_phase(client, phase, 1, pids, record=False)
        await reset_statement_stats(url)
        assert services.postgres is not None
        log = services.postgres.process.log_path
        log_offset = log.stat().st_size
        rows: list[Row] = []
        for concurrency in sorted({1, opts.concurrency}):
            pairs = await like_pairs(url, work, n)
            for phase in phases(work, n, opts.deep_pages, pairs):
                print(f"measure: {phase.name}, concurrency {concurrency} ...", flush=True)
                phase_rows = await run_phase(client, phase, concurrency, pids)
                for row in phase_rows:
                    print("   " + row_text(row), flush=True)
                rows.extend(phase_rows)
        statements = await top_statements(url)
        with log.open("rb") as handle:
            handle.seek(log_offset)
            slow = auto_explain_blocks(handle.read().decode(errors="replace"))
        slow_count = slow.count(" plan:")
        plans = (
            f"===== Statements slower than {SLOW_STATEMENT_MS} ms during the timed phases: "
            f"{slow_count} (plans without ANALYZE) =====\n{slow}\n"
        )
        if opts.explain:
            print("explain: one traced request of each kind (auto_explain) ...", flush=True)
            plans += await traced_plans(services, client, work, pids)
    return rows, statements, plans, login_ms, slow_count
