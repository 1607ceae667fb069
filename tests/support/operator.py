"""An operator's reconcile context for tests that run passes without a cluster: the default
settings and whatever fakes a test gives; what it does not give is never reached."""

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
