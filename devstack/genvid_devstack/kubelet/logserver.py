"""The kubelet's log endpoint, so `kubectl logs` works through the apiserver as on a cluster.

The apiserver proxies `pods/log` to `https://<node InternalIP>:<kubeletEndpoint port>/
containerLogs/...`, checks the serving certificate against `--kubelet-certificate-authority`
and presents a client certificate of the cluster CA; requiring that certificate is the whole
authorization here (only the apiserver and cluster admins hold one).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

_FOLLOW_POLL_SECONDS = 0.2


class LogSource(Protocol):
    @property
    def path(self) -> Path: ...

    def running(self) -> bool: ...


Lookup = Callable[[str, str, str], LogSource | None]


def _tail(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b""
    kept = data.splitlines(keepends=True)[-lines:]
    return b"".join(kept)


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError as error:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from error


def _app(lookup: Lookup) -> web.Application:
    async def container_logs(request: web.Request) -> web.StreamResponse:
        namespace, pod, container = (
            request.match_info["namespace"],
            request.match_info["pod"],
            request.match_info["container"],
        )
        source = lookup(namespace, pod, container)
        if source is None or not source.path.exists():
            raise web.HTTPNotFound(
                text=f'no logs for container "{container}" in pod "{namespace}/{pod}" on this node'
            )
        tail_lines, limit = _int(request, "tailLines"), _int(request, "limitBytes")
        data = source.path.read_bytes()
        offset = len(data)
        if tail_lines is not None:
            data = _tail(data, tail_lines)
        if limit is not None:
            data = data[:limit]
        if request.query.get("follow") != "true":
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        sent = len(data)
        await response.write(data)
        while limit is None or sent < limit:
            with source.path.open("rb") as log:
                log.seek(offset)
                chunk = log.read()
            offset += len(chunk)
            if limit is not None:
                chunk = chunk[: limit - sent]
            if chunk:
                sent += len(chunk)
                await response.write(chunk)
            elif not source.running():
                break
            else:
                await asyncio.sleep(_FOLLOW_POLL_SECONDS)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    return app


def tls_context(cert: Path, key: Path, client_ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=client_ca_pem)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve(lookup: Lookup, *, host: str, port: int, tls: ssl.SSLContext) -> web.AppRunner:
    """Start serving; the caller cleans up the returned runner."""
    runner = web.AppRunner(_app(lookup), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    return runner
