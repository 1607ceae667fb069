"""The api's Prometheus metrics. Labels stay low-cardinality: never a user or a prompt.

The api serves no /metrics endpoint yet: these count in the process's default registry,
ready for an exporter.
"""

from __future__ import annotations

from prometheus_client import Counter

GENERATE_REFUSALS = Counter(
    "genvid_api_generate_refusals_total",
    "POST /generate requests refused before anything was created, by reason.",
    ["reason"],
)
