"""The FastAPI application: `create_app(settings)`.

The lifespan opens what requests share (database engine, NATS connection and JetStream stream,
Kubernetes client, URL signer), starts the outbox reconciler and the webhooks' intake and
delivery loops, and closes it all in reverse.
Nothing else is kept in the process: api replicas are interchangeable.

Run: `uvicorn --factory genvid_api.main:create_app`: the one place the settings are read from
the environment, once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from nats.aio.client import Client as NATS

from genvid_api import (
    errors,
    fanout,
    metrics,
    nats_stream,
    outbox,
    web,
    webhook_delivery,
    webhook_intake,
)
from genvid_api.body_limit import BodyLimit
from genvid_api.config import Settings
from genvid_api.context import AppContext
from genvid_api.db import create_engine, create_session_factory
from genvid_api.resources import ResourceClient
from genvid_api.routes import (
    auth,
    events,
    feed,
    generations,
    health,
    usage,
    users,
    videos,
    webhooks,
)
from genvid_api.signing import create_signer
from genvid_api.stream_slots import SlotKeeper
from genvid_contracts import collector
from genvid_contracts.tasks import stop

log = logging.getLogger(__name__)

DESCRIPTION = """
GenVid turns a text prompt into a short preview video, asynchronously.

* Authenticate: `POST /auth/register`, then `POST /auth/token` (OAuth2 password form) for an
  access token (15 minutes) and a refresh token; `POST /auth/refresh` rotates them.
* `POST /generate` queues a generation (202); follow it with `GET /generations/{id}` or the
  server-sent events of `GET /generations/{id}/events` and `GET /events`.
* Once a generation has SUCCEEDED its `video_url` and `poster_url` are signed URLs valid for a
  few minutes: fetch them again from the api when they expire.
* `POST /webhooks` registers an endpoint told of every transition of your generations,
  signed as the Standard Webhooks specification says (the secret is in that answer only).
* `POST /videos` publishes a SUCCEEDED generation; `GET /feed` (everyone) and
  `GET /feed/following` list published videos newest first, `?cursor=` taking the previous
  page's `next_cursor`. Like (`PUT /videos/{id}/like`), comment, follow
  (`PUT /users/{username}/follow`); `GET /users/{username}` is a profile. Generations stay
  private unless published.

Errors are JSON: `{"detail": "..."}` or, for invalid input (422), `{"detail": [{"type": ...,
"loc": ..., "msg": ...}]}` naming the fields to blame.
"""


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        # NATS in the background: without it the api serves everything but the event streams.
        nc = NATS()
        js = nc.jetstream()
        connecting = asyncio.create_task(
            nats_stream.connect(
                nc,
                settings.nats_url,
                ensure=settings.nats_ensure_stream,
                auth=settings.nats_auth(),
            ),
            name="genvid-nats-connect",
        )
        stack.push_async_callback(nats_stream.close, nc, connecting)
        # One consumer of the stream for every event stream this process serves.
        hub = fanout.Hub(nc, settings.sse_queue_events, settings.sse_heartbeat_seconds)
        hub.start()
        stack.push_async_callback(hub.close)
        sessions = create_session_factory(engine)
        # One renewal of every event stream's slot per period, for the whole process.
        slots = SlotKeeper(sessions, settings.sse_recheck_seconds, settings.sse_streams_per_user)
        slots.start()
        stack.push_async_callback(slots.close)
        kube = await ResourceClient.connect(settings)
        stack.push_async_callback(kube.close)
        ctx = AppContext(
            settings=settings,
            engine=engine,
            sessions=sessions,
            nats=nc,
            js=js,
            hub=hub,
            slots=slots,
            kube=kube,
            signer=create_signer(settings),
        )
        app.state.ctx = ctx
        stack.enter_context(metrics.serving(settings, engine))
        if settings.outbox_enabled:
            stack.push_async_callback(
                stop, asyncio.create_task(outbox.run(ctx), name="genvid-outbox")
            )
        if settings.webhooks_enabled:
            # The stream's transitions into the webhooks' outbox, and its delivery loop.
            deliverer = webhook_delivery.Deliverer(ctx)
            deliverer.start()
            stack.push_async_callback(deliverer.close)
            intake = webhook_intake.run(ctx, on_taken=deliverer.wake)
            stack.push_async_callback(
                stop, asyncio.create_task(intake, name="genvid-webhook-intake")
            )
        log.info("genvid api ready (namespace %s)", settings.namespace)
        # Everything loaded by now lives as long as the process (genvid_contracts.collector).
        collector.tune(settings.gc_young_threshold)
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()  # type: ignore[call-arg]  # required values from env
    # /docs and /redoc with Swagger UI and ReDoc from the installed wheel, never a CDN.
    app = FastAPIOffline(
        title="GenVid API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.add_middleware(metrics.MetricsMiddleware)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(usage.router)
    app.include_router(generations.router)
    app.include_router(events.router)
    app.include_router(videos.router)
    app.include_router(feed.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)

    web.install(app, settings)
    return app
