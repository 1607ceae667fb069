"""`python -m bench`: seed, measure, report (bench/__init__.py tells the whole run)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import types
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.config import FULL, QUICK, REPO, Options, Sizes
from bench.load import load_workload
from bench.measure import measure
from bench.report import machine, markdown, pg_settings, write_results
from bench.seed import SEED_MARKER, all_visible_share_at, reset_schema, seed, seed_marker
from bench.services import Services
from genvid_devstack.process import StartupError


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Seed users, videos, follows and likes; time feed pages and like/unlike.",
    )
    parser.add_argument("--quick", action="store_true", help="1k users, 10k videos, 100k likes")
    parser.add_argument("--users", type=int)
    parser.add_argument("--videos", type=int)
    parser.add_argument("--likes", type=int)
    parser.add_argument("--follows-per-user", type=int)
    parser.add_argument("--comments", type=int)
    parser.add_argument("--requests", type=int, help="timed requests per operation and run")
    parser.add_argument("--warmup", type=int, help="untimed requests per operation first")
    parser.add_argument("--concurrency", type=int, default=4, help="the concurrent run's tasks")
    parser.add_argument("--deep-pages", type=int, default=20, help="pages per cursor walk")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="keep PostgreSQL here; a database seeded with the same sizes is reused",
    )
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra PostgreSQL setting (ALTER SYSTEM), e.g. shared_buffers=1GB",
    )
    parser.add_argument("--no-explain", action="store_true", help="skip the auto_explain pass")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        users=args.users or base.users,
        videos=args.videos or base.videos,
        likes=args.likes if args.likes is not None else base.likes,
        follows_per_user=args.follows_per_user or base.follows_per_user,
        comments=args.comments if args.comments is not None else base.comments,
    )
    if sizes.users < 10 or sizes.videos < 10:
        parser.error("at least 10 users and 10 videos")
    if sizes.likes > sizes.users * sizes.videos // 4:
        parser.error("too many likes for that many users and videos")
    pg_settings: dict[str, str] = {}
    for item in args.pg_setting:
        name, sep, value = item.partition("=")
        if not sep or not name.replace("_", "").replace(".", "").isalnum():
            parser.error(f"--pg-setting wants NAME=VALUE, got {item!r}")
        pg_settings[name] = value
    mode = "quick" if args.quick else "full"
    if sizes not in (FULL, QUICK):
        mode = "custom"
    requests = args.requests or (100 if args.quick else 300)
    return Options(
        mode=mode,
        sizes=sizes,
        requests=requests,
        warmup=args.warmup if args.warmup is not None else min(50, requests),
        concurrency=max(1, args.concurrency),
        deep_pages=max(2, args.deep_pages),
        seed=args.seed,
        state_dir=args.state_dir.resolve() if args.state_dir else None,
        pg_settings=pg_settings,
        explain=not args.no_explain,
    )


def _interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(opts: Options) -> int:
    load_before = [round(x, 2) for x in os.getloadavg()]
    if opts.state_dir is not None:
        root = opts.state_dir
        root.mkdir(parents=True, exist_ok=True)
        keep = True
    else:
        root = Path(tempfile.mkdtemp(prefix="genvid-bench-"))
        keep = False
    # PostgreSQL runs as `nobody` when we are root: it must be able to reach its folder.
    root.chmod(0o755)
    services = Services(root=root)
    failed = True
    try:
        started = time.perf_counter()
        print(f"bench: {opts.mode} {asdict(opts.sizes)}; state in {root}", flush=True)
        services.start_postgres(opts.pg_settings)
        services.start_nats()
        marker = root / SEED_MARKER
        marker_doc = seed_marker(opts)
        reuse = keep and marker.exists() and marker.read_text() == marker_doc
        if keep and not reuse:
            marker.unlink(missing_ok=True)
            asyncio.run(reset_schema(services.database_url))
        services.migrate()
        print(f"bench: PostgreSQL and NATS up, migrated ({time.perf_counter() - started:.0f}s)")
        seeded = asyncio.run(seed(services.database_url, opts, reuse))
        if keep:
            marker.write_text(marker_doc)
        print(
            f"bench: seeded in {seeded.total_seconds:.0f}s, "
            f"database {seeded.database_bytes / 2**20:,.0f} MiB",
            flush=True,
        )
        services.start_api()
        work = asyncio.run(load_workload(services.database_url, opts.seed))
        rows, statements, plans, login_ms, slow_count = asyncio.run(measure(services, opts, work))
        all_visible_after = asyncio.run(all_visible_share_at(services.database_url))
        doc: dict[str, Any] = {
            "mode": opts.mode,
            "sizes": asdict(opts.sizes),
            "requests_per_operation": opts.requests,
            "concurrency": opts.concurrency,
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "load_before": load_before,
            "postgres": asyncio.run(pg_settings(services.database_url)),
            "pg_settings_overridden": opts.pg_settings,
            "seed": asdict(seeded),
            "login_ms": login_ms,
            "slow_statements": slow_count,
            "all_visible_after": all_visible_after,
            "heavy_followers": len(work.heavy_followers),
            "typical_followers": len(work.typical_followers),
            "quiet_followers": len(work.quiet_followers),
            "results": [asdict(row) for row in rows],
            "statements": statements,
        }
        written = write_results(doc, plans)
        print()
        print(markdown(doc))
        print("bench: wrote " + ", ".join(str(p.relative_to(REPO)) for p in written))
        failed = False
        return 0
    except StartupError as error:  # its message has the log's tail
        print(f"bench: failed: {error}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, asyncpg.PostgresError) as error:
        print(f"bench: failed: {error!r}\n{services.log_tails()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        services.stop()
        if not keep:
            if failed:
                logs = Path(tempfile.gettempdir()) / f"{root.name}-logs"
                with contextlib.suppress(OSError):
                    shutil.copytree(root / "logs", logs)
                    print(f"bench: logs kept in {logs}", file=sys.stderr)
            shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
