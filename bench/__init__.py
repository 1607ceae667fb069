"""Feed and like latency on a seeded, real PostgreSQL, through the real api process.

A benchmark, not a test: it asserts nothing about speed, it measures and reports.

    .venv/bin/python -m bench           # 10,000 users, 100,000 videos, 1,000,000 likes
    .venv/bin/python -m bench --quick   # 1,000 / 10,000 / 100,000, fewer requests
    .venv/bin/python -m bench --help    # sizes, request counts, --state-dir

Start to finish, and everything it starts is stopped at the end (also on errors, Ctrl-C and
SIGTERM; a failed run keeps its logs in /tmp/<state folder>-logs):

1. A throwaway PostgreSQL and NATS from the dev stack's own modules, in a temporary state folder
   (or `--state-dir`, kept: a later run with the same sizes, seed, generator and migrations
   reuses its database, anything else re-seeds it). PostgreSQL keeps the dev stack's settings;
   only `pg_stat_statements` and `auto_explain` are preloaded (one restart).
2. `alembic upgrade head`, then the seed with COPY into the schema's real tables: users (one
   precomputed argon2 hash for all), a SUCCEEDED `video_generation_jobs` row per video, videos
   published over 90 days (denser towards now), follows (~N per user; 1% heavy followers at
   20x; 2% "quiet" followers who follow only accounts that never publish), likes (distinct
   pairs, skewed towards recent and popular videos), a few comments. Triggers are off during
   COPY (session_replication_role = replica), so the counters the triggers keep
   (`videos.like_count`, `comment_count`) are written from the generated data and checked
   against the rows afterwards. Then VACUUM ANALYZE (visibility map set: the steady state
   autovacuum reaches) and CHECKPOINT, before every run.
3. The api as a real uvicorn process, one worker as the chart runs it, outbox off, with a
   kubeconfig that names an unused loopback port (the api only reads it at startup; no route
   measured here talks to Kubernetes). Its factory is `bench.gcprobe:create_bench_app`, which
   returns `genvid_api.main:create_app()` unchanged and logs the api's full GC pauses. Access
   tokens are signed with the api's own code and key.
4. Warm-up, then for each operation N timed requests from one httpx client, sequentially
   (concurrency 1) and then from 4 concurrent tasks: GET /feed (first page; deep pages by
   next_cursor), GET /feed/following (heavy, typical and quiet followers), PUT and DELETE
   /videos/{id}/like (each PUT is followed by its DELETE, so the data is unchanged).
5. Plans: auto_explain logs those of statements slower than 25 ms during the timed phases, and
   of every statement of one traced request of each kind (ANALYZE, BUFFERS), into
   `bench/results/plans-<mode>.txt`.
6. `bench/results/latest.{md,json}` and `feed-<mode>.{md,json}`: latency table, CPU split,
   api GC pauses, seed time, database size, visibility map, server-side time per statement;
   and `feed.json` / `feed.svg`, the figures for the benchmarks' table (`bench/summary.py`).

Latencies are client-side wall times over loopback, on the same 2-core machine as the api,
PostgreSQL and the client itself; CPU used by other processes during each phase is reported.
"""
