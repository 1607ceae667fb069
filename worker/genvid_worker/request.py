"""What one generation asks for: the command line's values, validated by the CLI.

Its own module so that every step of a generation (the CLI, the providers) takes this one
request rather than a copy of the fields it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from genvid_worker.config import Provider


@dataclass(frozen=True)
class GenerationRequest:
    """What the command line asked for, already validated."""

    job_id: str
    prompt: str
    duration_seconds: int
    aspect_ratio: str
    model: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    provider: Provider | None = None
    price_usd_per_second: Decimal | None = None
