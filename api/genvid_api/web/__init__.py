"""The web app, served by the api itself: one image, one origin, no CORS.

The app is static files in `static/` (plain ES modules and one stylesheet, no build step), a
client of the JSON API like any other frontend. `GET /` is its page, its files are under
`/ui/`, and it navigates by the URL fragment (`/#/feed`), so none of its routes can shadow an
API path. `GET /ui/config.json` tells it what the API's contract does not: the models this
server offers, what each duration of each costs (the estimate a generation reserves), and the
request limits, read from the settings and the request model so that the page and the server
cannot disagree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from genvid_api.config import Settings
from genvid_api.models import GenerationCreate
from genvid_contracts.pricing import estimate_micros, usd_text

STATIC = Path(__file__).parent / "static"
ASSETS_URL = "/ui"

# Scripts, styles and API calls from this origin only; previews and posters come from the
# bucket's signed URLs (another origin: the storage emulator locally, GCS in a cluster).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: http: https:",
        "media-src 'self' http: https:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class _Revalidated(StaticFiles):
    """Static files a browser revalidates on each load (ETag, 304): a new release is seen at
    once, and nothing unchanged is sent twice."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def client_config(settings: Settings) -> dict[str, Any]:
    """What the page needs before its first request: models, estimates, limits."""
    schema = GenerationCreate.model_json_schema()["properties"]
    prompt = schema["prompt"]
    duration = schema["duration_seconds"]
    seconds = range(duration["minimum"], duration["maximum"] + 1)
    models = []
    for model in settings.models:
        estimates = {
            str(n): usd_text(micros)
            for n in seconds
            if (micros := estimate_micros(settings.prices_usd_per_second, model, n)) is not None
        }
        models.append({"id": model, "estimates_usd": estimates})
    return {
        "models": models,
        "default_model": settings.default_model,
        "prompt": {"min_length": prompt["minLength"], "max_length": prompt["maxLength"]},
        "duration_seconds": {
            "minimum": duration["minimum"],
            "maximum": duration["maximum"],
            "default": duration["default"],
        },
        "aspect_ratios": schema["aspect_ratio"]["enum"],
        "default_aspect_ratio": schema["aspect_ratio"]["default"],
        "budget_period": settings.budget_period.value,
    }


def install(app: FastAPI, settings: Settings) -> None:
    """`GET /`, `GET /ui/config.json` and the app's files under `/ui/`."""
    config = client_config(settings)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    @app.get(f"{ASSETS_URL}/config.json", include_in_schema=False)
    async def web_config() -> dict[str, Any]:
        return config

    app.mount(ASSETS_URL, _Revalidated(directory=STATIC), name="ui")
