"""Probes: `/healthz` (liveness) and `/readyz` (readiness, with each dependency's state).

Liveness depends on nothing outside the process: a database or NATS outage must not make the
kubelet restart every replica, which would only add cold starts to the outage. Readiness checks
Postgres, NATS and the apiserver concurrently, each within `ready_timeout_seconds`, and reports
each. Only the database decides the answer (503 without it): every route but the probes and the
docs needs it, while without NATS only the event streams fail (503) and without the apiserver
only new generations wait (the outbox creates their resources later), so those two are
reported as `degraded` and the replica keeps its traffic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy import text

from genvid_api.deps import Ctx

router = APIRouter(tags=["health"], include_in_schema=False)

Check = Literal["ok", "unavailable"]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    database: Check
    nats: Check
    kubernetes: Check


@router.get("/healthz")
async def healthz() -> Health:
    return Health(status="ok")


async def _check(probe: Awaitable[object], seconds: float) -> Check:
    try:
        async with asyncio.timeout(seconds):
            await probe
    except Exception:
        return "unavailable"
    return "ok"


async def _database(ctx: Ctx) -> None:
    async with ctx.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _nats(ctx: Ctx) -> None:
    if not ctx.nats.is_connected:
        raise ConnectionError("NATS is not connected")


@router.get("/readyz")
async def readyz(ctx: Ctx, response: Response) -> Readiness:
    timeout = ctx.settings.ready_timeout_seconds
    database, nats, kubernetes = await asyncio.gather(
        _check(_database(ctx), timeout),
        _check(_nats(ctx), timeout),
        _check(ctx.kube.ping(), timeout),
    )
    if database != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        overall: Literal["ready", "degraded", "unavailable"] = "unavailable"
    else:
        overall = "ready" if nats == kubernetes == "ok" else "degraded"
    return Readiness(status=overall, database=database, nats=nats, kubernetes=kubernetes)
