"""An operator's reconcile context for tests that run passes without a cluster: the default
settings and whatever fakes a test gives; what it does not give is never reached. And the
VideoGeneration `decide` is given in those tests."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, cast

from genvid_operator.cluster import Cluster
from genvid_operator.config import Settings
from genvid_operator.mirror import GenerationMirror
from genvid_operator.publish import EventPublisher
from genvid_operator.reconcile import Context


def operator_context(
    cluster: object = None,
    events: object = None,
    mirror: object = None,
    jobs: Mapping[str, Collection[dict[str, Any]]] | None = None,
) -> Context:
    return Context(
        settings=Settings(),
        cluster=cast(Cluster, cluster),
        events=cast(EventPublisher, events),
        mirror=cast(GenerationMirror | None, mirror),
        jobs=jobs or {},
    )


def video_generation(status: dict[str, Any] | None = None, **spec: Any) -> Any:
    """VideoGeneration `g1` in `ns` with a valid spec (`spec` overrides or adds fields) and
    `status` (none: new)."""
    return {
        "metadata": {"name": "g1", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {
            "prompt": "a fox",
            "model": "veo-3.0-fast-generate-001",
            "durationSeconds": 4,
            "aspectRatio": "16:9",
            "owner": "user-1",
            "cancel": False,
            **spec,
        },
        "status": status or {},
    }
