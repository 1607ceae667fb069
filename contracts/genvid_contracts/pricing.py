"""Model prices and the money rules the api (reserving) and the operator (charging) share.

One price table, so what the api reserves when it accepts a generation is exactly what the
operator estimates and the worker bills; `GENVID_PRICES_USD_PER_SECOND` overrides it in both.
Money in Postgres is integer micro-USD (no float ever touches it); in JSON it is a decimal
string.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal

from genvid_contracts.status import GenerationStatus
from genvid_contracts.worker import DEFAULT_MODEL

DEFAULT_PRICES_USD_PER_SECOND: Mapping[str, Decimal] = {
    "veo-2.0-generate-001": Decimal("0.50"),
    "veo-3.0-generate-001": Decimal("0.40"),
    DEFAULT_MODEL: Decimal("0.15"),
    "veo-3.1-generate-preview": Decimal("0.40"),
    "veo-3.1-fast-generate-preview": Decimal("0.15"),
}

MICROS_PER_USD = 1_000_000


def to_micros(usd: Decimal | str) -> int:
    """Whole micro-USD, rounded up: a reservation never falls short of the price."""
    return int((Decimal(usd) * MICROS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def usd_text(micros: int) -> str:
    """A decimal string, cents at least (`3200000` -> `3.20`, `1` -> `0.000001`)."""
    amount = Decimal(micros).scaleb(-6)
    cents = amount.quantize(Decimal("0.01"))
    return format(cents if cents == amount else amount.normalize(), "f")


def estimate_micros(prices: Mapping[str, Decimal], model: str, seconds: int) -> int | None:
    """Price x seconds, or None for a model without a price (the operator rejects those)."""
    price = prices.get(model)
    if price is None:
        return None
    return to_micros(price * seconds)


def charge_micros(
    status: str, cost_usd: Decimal | str | None, *, started: bool, estimate_micros: int
) -> int:
    """What a finished generation is charged, from its terminal status.

    SUCCEEDED and FAILED are charged what the status reports (the worker reports 0 for every
    failure it saw, a safety filter included; a failure it could not report, such as a
    deadline, keeps the estimate: the provider may have billed it). CANCELED costs the estimate
    only once a worker started (a provider call may be under way), nothing while it waited.
    REJECTED never reached a provider.
    """
    if status in (GenerationStatus.SUCCEEDED, GenerationStatus.FAILED):
        return to_micros(cost_usd) if cost_usd is not None else estimate_micros
    if status == GenerationStatus.CANCELED and started:
        return to_micros(cost_usd) if cost_usd is not None else estimate_micros
    return 0
