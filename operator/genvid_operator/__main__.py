"""`python -m genvid_operator`: run the operator for the configured namespace.

The settings are read here, once: they pick the namespace, set the retention when the
handlers are registered, and reach every handler through kopf's memo. One active operator per
cluster (the Deployment uses strategy Recreate), so kopf peering is off; the liveness endpoint
serves the kubelet's probe.

kopf runs on uvloop rather than asyncio's own loop: its transports, TLS and callbacks cost the
operator less CPU per watch event and per request, and kopf runs on any asyncio loop.
"""

from __future__ import annotations

import argparse
import logging

import kopf
import uvloop
from prometheus_client import start_http_server

from genvid_operator import handlers
from genvid_operator.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="genvid-operator", description=__doc__)
    parser.add_argument("--liveness", default="http://127.0.0.1:8081/healthz")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # kopf logs every handler call; transitions are logged by genvid_operator.reconcile.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    uvloop.run(
        kopf.operator(
            registry=registry,
            memo=kopf.Memo(settings=settings),
            namespaces=[settings.namespace],
            standalone=True,
            liveness_endpoint=args.liveness,
        )
    )


if __name__ == "__main__":
    main()
