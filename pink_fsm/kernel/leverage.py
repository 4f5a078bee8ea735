"""Strategy conviction -> integer exchange leverage (D10).

The strategy speaks in fractional conviction (e.g. 2.5); the venue takes an integer. The mapping is explicit:
conviction x boost, capped at the strategy's maximum, rounded half-to-even, clamped to [1, venue max]. It never
enters PnL (D1): leverage only sets margin at the venue.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def exchange_leverage(conviction: Decimal, *, venue_max: int, boost: Decimal = Decimal(1),
                      strategy_max: Decimal | None = None) -> int:
    """The integer leverage to set at the venue; ValueError for a non-finite or non-positive conviction/boost."""
    if not isinstance(conviction, Decimal) or not conviction.is_finite() or conviction <= 0:
        raise ValueError(f"conviction must be a positive finite number, got {conviction!r}")
    if not isinstance(boost, Decimal) or not boost.is_finite() or boost <= 0:
        raise ValueError(f"leverage boost must be a positive finite number, got {boost!r}")
    boosted = conviction * boost
    if strategy_max is not None:
        boosted = min(boosted, strategy_max)
    whole = int(boosted.to_integral_value(rounding=ROUND_HALF_EVEN))
    if strategy_max is not None and whole > strategy_max:
        whole = int(strategy_max)  # rounding must not lift it over the strategy's cap (7.5 -> 7, not 8)
    return max(1, min(venue_max, whole))
