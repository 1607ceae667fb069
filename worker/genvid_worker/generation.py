"""One generation, start to finish: pick the provider, make the video and poster, describe them.

The edge where configuration meets side effects: it builds the clients, hands each provider
its bucket and object names, and turns storage failures into classified ones. It returns the
success document (`WorkerResult`) or raises a `WorkerError`; the CLI turns either into the
termination log.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from genvid_contracts.worker import WorkerResult
from genvid_worker import log
from genvid_worker.config import Provider, Settings, choose_provider
from genvid_worker.poster import jpeg_bytes
from genvid_worker.request import GenerationRequest
from genvid_worker.result import (
    CONTENT_TYPE_JPEG,
    CONTENT_TYPE_MP4,
    cost_usd,
    decimal_text,
    reported_seconds,
)
from genvid_worker.storage import Names, Store, object_names, open_store, storage_errors
from genvid_worker.synthetic import RenderSpec, render
from genvid_worker.veo import PollPolicy, Veo, build_client

SYNTHETIC_MODEL = "genvid-synthetic"


def run(request: GenerationRequest, settings: Settings, *, now: datetime) -> WorkerResult:
    provider = choose_provider(settings, request.provider)
    names = object_names(request.job_id, now)
    log.info(
        "generation.started",
        provider=str(provider),
        bucket=settings.bucket,
        duration_seconds=request.duration_seconds,
        aspect_ratio=request.aspect_ratio,
    )
    with storage_errors():
        store = open_store(settings)
        if provider is Provider.SYNTHETIC:
            return run_synthetic(request, store, names, billing=settings.synthetic_billing)
        return run_veo(request, settings, store, names)


def run_synthetic(
    request: GenerationRequest, store: Store, names: Names, *, billing: bool = True
) -> WorkerResult:
    """Render straight into a resumable upload; the poster is the first frame, already at hand.

    Billed at the model's list price unless `billing` is off, so budgets, settlement and
    dashboards behave on a laptop as they do with Veo.
    """
    spec = RenderSpec(
        prompt=request.prompt,
        duration_seconds=request.duration_seconds,
        aspect_ratio=request.aspect_ratio,
        seed=request.seed,
    )
    with store.streaming_writer(names.video, CONTENT_TYPE_MP4) as sink:
        rendered = render(spec, sink)
    log.info(
        "video.uploaded",
        object=names.video,
        size=sink.bytes_written,
        frames=rendered.frame_count,
    )
    store.upload_bytes(names.poster, jpeg_bytes(rendered.first_frame), CONTENT_TYPE_JPEG)
    log.info("poster.uploaded", object=names.poster)
    cost = cost_usd(request.price_usd_per_second, request.duration_seconds)
    return WorkerResult(
        status="succeeded",
        provider=str(Provider.SYNTHETIC),
        model=request.model or SYNTHETIC_MODEL,
        bucket=store.name,
        object=names.video,
        poster_object=names.poster,
        size_bytes=sink.bytes_written,
        duration_seconds=reported_seconds(rendered.duration_seconds),
        content_type=CONTENT_TYPE_MP4,
        cost_usd=decimal_text(cost if billing else Decimal(0)),
        operation=None,
    )


def run_veo(
    request: GenerationRequest, settings: Settings, store: Store, names: Names
) -> WorkerResult:
    veo = Veo(
        client=build_client(settings),
        store=store,
        names=names,
        policy=PollPolicy.from_settings(settings),
    )
    return veo.run(request, model=request.model or settings.veo_model)
