"""The reference policy's configuration: one frozen, validated value; an invalid configuration cannot exist.

Every field carries its unit in its name (`_bps`, `_ms`, `_ticks`). Leverage and money-adjacent numbers are
Decimal (they are compared exactly against prices); signal thresholds are float (the signal is float).
Errors name the field: `ValueError("tp_bps: must be > 0, got Decimal('0')")`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from pink_fsm.kernel.values import Symbol, parse_decimal

__all__ = ["MAX_LOOKBACK_TICKS", "MAX_UNIVERSE_SYMBOLS", "ReferencePolicyConfig"]

# Bounds on per-asset memory: each tracked symbol holds at most MAX_LOOKBACK_TICKS + 1 prices, and at most
# `max_symbols` symbols are tracked (quotes of further symbols are ignored, never stored).
MAX_LOOKBACK_TICKS = 10_000
MAX_UNIVERSE_SYMBOLS = 1_000


def _positive_int(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{attr.name}: must be a whole number > 0, got {value!r}")


def _non_negative_int(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attr.name}: must be a whole number >= 0, got {value!r}")


def _positive_decimal(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"{attr.name}: must be a finite Decimal > 0, got {value!r}")


def _non_negative_decimal(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{attr.name}: must be a finite Decimal >= 0, got {value!r}")


def _positive_float(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attr.name}: must be a finite number > 0, got {value!r}")


def _boolean(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attr.name}: must be true or false, got {value!r}")


def _symbols(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(s, Symbol) for s in value):
        raise ValueError(f"{attr.name}: must be a tuple of Symbol, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{attr.name}: lists a symbol twice: {[str(s) for s in value]}")


@attrs.frozen
class ReferencePolicyConfig:
    """Parameters of `ReferencePolicy`. The defaults trade a few round trips per simulated hour on a GBM feed
    with 60-80 % annual volatility quoted every 10 s (see docs/policy.md). A reference, not trading advice.

    >>> ReferencePolicyConfig(tp_bps=Decimal(60)).tp_bps
    Decimal('60')
    """

    # -- universe: which symbols may be traded (empty = every symbol the market view quotes, up to max_symbols)
    universe: tuple[Symbol, ...] = attrs.field(default=(), validator=_symbols)
    max_symbols: int = attrs.field(default=64, validator=_positive_int)
    max_spread_bps: Decimal = attrs.field(default=Decimal(10), validator=_positive_decimal)
    # The original runtime traded SHORT only (BLUE's SHORT regime); LONG entries are opt-in.
    allow_short: bool = attrs.field(default=True, validator=_boolean)
    allow_long: bool = attrs.field(default=False, validator=_boolean)
    # -- signal: velocity divergence of the mid price, normalised by the asset's own tick volatility
    lookback_short_ticks: int = attrs.field(default=6, validator=_positive_int)
    lookback_long_ticks: int = attrs.field(default=60, validator=_positive_int)
    entry_z: float = attrs.field(default=1.5, validator=_positive_float)  # weakest signal that may enter
    full_z: float = attrs.field(default=3.5, validator=_positive_float)  # signal at which leverage is maximal
    # -- sizing: cubic-convex leverage in [leverage_min, leverage_max], x boost, capped at strategy max
    leverage_min: Decimal = attrs.field(default=Decimal("0.5"), validator=_positive_decimal)
    leverage_max: Decimal = attrs.field(default=Decimal("8.0"), validator=_positive_decimal)
    strategy_max_leverage: Decimal = attrs.field(default=Decimal("8.0"), validator=_positive_decimal)
    leverage_boost: Decimal = attrs.field(default=Decimal(1), validator=_positive_decimal)
    capital_fraction: Decimal = attrs.field(default=Decimal("0.95"), validator=_positive_decimal)
    loss_shrink: Decimal = attrs.field(default=Decimal("0.8"), validator=_positive_decimal)  # per losing trade
    loss_streak_max: int = attrs.field(default=3, validator=_non_negative_int)  # shrink at most this many times
    # -- picker: a symbol that just lost waits before it may be picked again
    cooldown_after_loss_ms: int = attrs.field(default=5 * 60_000, validator=_non_negative_int)
    # -- DC gate (direction confirmation): SHORT blocked when the mid rose >= dc_min_bps over dc_lookback_ticks
    dc_lookback_ticks: int = attrs.field(default=7, validator=_positive_int)
    dc_min_bps: Decimal = attrs.field(default=Decimal("0.75"), validator=_non_negative_decimal)
    # -- exits, in bps of the entry price and ms of holding
    tp_bps: Decimal = attrs.field(default=Decimal(30), validator=_positive_decimal)
    stop_bps: Decimal = attrs.field(default=Decimal(25), validator=_positive_decimal)
    max_hold_ms: int = attrs.field(default=20 * 60_000, validator=_positive_int)

    def __attrs_post_init__(self) -> None:
        if not (self.allow_short or self.allow_long):
            raise ValueError("allow_short, allow_long: at least one side must be allowed")
        if self.lookback_short_ticks >= self.lookback_long_ticks:
            raise ValueError(f"lookback_short_ticks ({self.lookback_short_ticks}) must be < lookback_long_ticks "
                             f"({self.lookback_long_ticks})")
        for name in ("lookback_long_ticks", "dc_lookback_ticks"):
            if getattr(self, name) > MAX_LOOKBACK_TICKS:
                raise ValueError(f"{name}: at most {MAX_LOOKBACK_TICKS}, got {getattr(self, name)}")
        if self.max_symbols > MAX_UNIVERSE_SYMBOLS or len(self.universe) > self.max_symbols:
            raise ValueError(f"max_symbols ({self.max_symbols}) must be <= {MAX_UNIVERSE_SYMBOLS} and cover the "
                             f"universe ({len(self.universe)} symbols)")
        if self.full_z <= self.entry_z:
            raise ValueError(f"full_z ({self.full_z}) must be > entry_z ({self.entry_z})")
        if self.leverage_min > self.leverage_max:
            raise ValueError(f"leverage_min ({self.leverage_min}) must be <= leverage_max ({self.leverage_max})")
        if not self.leverage_min <= self.strategy_max_leverage <= self.leverage_max:
            raise ValueError(f"strategy_max_leverage ({self.strategy_max_leverage}) must lie in [leverage_min, "
                             f"leverage_max] = [{self.leverage_min}, {self.leverage_max}]")
        if self.capital_fraction > 1:
            raise ValueError(f"capital_fraction: must be in (0, 1], got {self.capital_fraction}")
        if self.loss_shrink > 1:
            raise ValueError(f"loss_shrink: must be in (0, 1] (a loss never grows the size), got {self.loss_shrink}")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> ReferencePolicyConfig:
        """Parse plain values (as from JSON, TOML or a CLI): numbers as int/float/str, symbols as text.

        >>> ReferencePolicyConfig.from_mapping({"tp_bps": "55", "universe": ["FETUSDT"]}).universe
        (Symbol(base='FET', quote='USDT'),)
        """
        known = {f.name: f for f in attrs.fields(cls)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, raw in options.items():
            parser = _PARSERS[str(known[name].type)]
            values[name] = parser(raw, name)
        return cls(**values)


def _parse_int(raw: object, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"{name}: expected a whole number, got {raw!r}")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {raw!r}") from None


def _parse_float(raw: object, name: str) -> float:
    return float(parse_decimal(raw, name))


def _parse_bool(raw: object, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    raise ValueError(f"{name}: expected true or false, got {raw!r}")


def _parse_symbols(raw: object, name: str) -> tuple[Symbol, ...]:
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise ValueError(f"{name}: expected a list of symbols like ['FET-USDT'], got {raw!r}")
    try:
        return tuple(s if isinstance(s, Symbol) else Symbol.parse(s) for s in raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "Decimal": parse_decimal,
    "tuple[Symbol, ...]": _parse_symbols,
}
