"""Configuration of the simulated venue: contracts, account, feed, funding, liquidity.

Every value is validated on construction and a bad one is refused with a message naming the field, so an
invalid venue cannot be built. Money, quantities and prices are Decimal; model parameters of the synthetic feed
(volatility, drift, jump rates) are floats because the generator works in floats.

Example::

    config = SimConfig(seed=7, symbols=default_symbols(["BTC-USDT", "FET-USDT"]))
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from pink_fsm.kernel.values import ContractSpec, Symbol

__all__ = [
    "DEFAULT_START_MS",
    "FeedParams",
    "SimConfig",
    "SimSymbol",
    "default_symbols",
]

# 2024-01-01T00:00:00Z: a funding boundary (a multiple of 8 h since the epoch).
DEFAULT_START_MS = 1_704_067_200_000
HOUR_MS = 3_600_000
# Bounds that keep a misconfigured run from eating the host (TIGER_STYLE: a limit on everything).
MAX_SYMBOLS = 500
MAX_DEPTH_LEVELS = 10_000


def _fail(field: str, message: str) -> ValueError:
    return ValueError(f"SimConfig.{field}: {message}")


def _check_decimal(field: str, value: object, *, positive: bool = False, non_negative: bool = False) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _fail(field, f"expected a finite Decimal, got {value!r}")
    if positive and value <= 0:
        raise _fail(field, f"must be > 0, got {value}")
    if non_negative and value < 0:
        raise _fail(field, f"must be >= 0, got {value}")


def _check_int(field: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, f"expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise _fail(field, f"must be {bound}, got {value}")


def _check_float(field: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(field, f"expected a finite number, got {value!r}")
    if not low <= value <= high:
        raise _fail(field, f"must be in [{low}, {high}], got {value}")


@attrs.frozen
class FeedParams:
    """The synthetic feed: geometric Brownian motion with Poisson jumps, quantised to the tick.

    `annual_vol` and `drift_annual` are per year of 365 days; `jumps_per_day` is the Poisson intensity;
    `jump_sigma` is the standard deviation of a jump's log-size; `half_spread_ticks` puts the bid and ask that
    many ticks either side of the mid."""

    annual_vol: float = 0.6
    drift_annual: float = 0.0
    jumps_per_day: float = 2.0
    jump_sigma: float = 0.01
    half_spread_ticks: int = 1

    def __attrs_post_init__(self) -> None:
        _check_float("feed.annual_vol", self.annual_vol, 0.0, 20.0)
        _check_float("feed.drift_annual", self.drift_annual, -20.0, 20.0)
        _check_float("feed.jumps_per_day", self.jumps_per_day, 0.0, 10_000.0)
        _check_float("feed.jump_sigma", self.jump_sigma, 0.0, 1.0)
        _check_int("feed.half_spread_ticks", self.half_spread_ticks, 1, 1_000)


@attrs.frozen
class SimSymbol:
    """One listed contract of the simulated venue.

    `depth_lots` is the synthetic book depth per price level (each level one tick worse than the last) that a
    taker order walks; `resting_lots_per_quote` bounds how much of the resting limit orders one quote can fill
    (so a big limit order fills over several quotes); `annual_vol` overrides the feed's volatility."""

    contract: ContractSpec
    start_px: Decimal
    min_notional_usdt: Decimal = Decimal("2")
    depth_lots: int = 1_000
    resting_lots_per_quote: int = 1_000
    annual_vol: float | None = None

    def __attrs_post_init__(self) -> None:
        name = f"symbols[{self.contract.symbol}]"
        if not isinstance(self.contract, ContractSpec):
            raise _fail(f"{name}.contract", f"expected a ContractSpec, got {self.contract!r}")
        _check_decimal(f"{name}.start_px", self.start_px, positive=True)
        if self.start_px % self.contract.tick_size != 0:
            raise _fail(f"{name}.start_px", f"{self.start_px} is not a multiple of the tick {self.contract.tick_size}")
        _check_decimal(f"{name}.min_notional_usdt", self.min_notional_usdt, non_negative=True)
        _check_int(f"{name}.depth_lots", self.depth_lots, 1)
        _check_int(f"{name}.resting_lots_per_quote", self.resting_lots_per_quote, 1)
        if self.annual_vol is not None:
            _check_float(f"{name}.annual_vol", self.annual_vol, 0.0, 20.0)

    @property
    def symbol(self) -> Symbol:
        return self.contract.symbol


def _default(symbol: str, lot: str, tick: str, max_lev: int, start_px: str, depth_lots: int, vol: float) -> SimSymbol:
    contract = ContractSpec(Symbol.parse(symbol), Decimal(lot), Decimal(tick), max_lev, Decimal("0.0005"),
                            Decimal("0.0002"))
    return SimSymbol(contract, Decimal(start_px), Decimal("2"), depth_lots, depth_lots, vol)


# Lot and tick sizes as BingX lists them (quantityPrecision / pricePrecision), start prices near early 2024.
# Depth per level is roughly 20-50k USDT, so a taker order of that size walks a level.
_DEFAULTS: dict[str, SimSymbol] = {
    s.symbol.__str__(): s
    for s in (
        _default("BTC-USDT", "0.0001", "0.1", 125, "42000.0", 5_000, 0.5),
        _default("ETH-USDT", "0.01", "0.01", 100, "2300.00", 1_000, 0.6),
        _default("SOL-USDT", "0.1", "0.001", 50, "100.000", 3_000, 0.9),
        _default("FET-USDT", "1", "0.0001", 50, "0.6500", 50_000, 1.1),
        _default("XRP-USDT", "1", "0.0001", 75, "0.6000", 50_000, 0.7),
    )
}


def default_symbols(names: Iterable[str] | None = None) -> tuple[SimSymbol, ...]:
    """Ready-made contracts (BTC, ETH, SOL, FET, XRP against USDT); all of them when `names` is None."""
    if names is None:
        return tuple(_DEFAULTS.values())
    picked = []
    for raw in names:
        key = str(Symbol.parse(raw))
        if key not in _DEFAULTS:
            raise ValueError(f"default_symbols: no default contract for {key}; known: {', '.join(_DEFAULTS)}")
        picked.append(_DEFAULTS[key])
    return tuple(picked)


def _symbols_converter(value: Iterable[SimSymbol]) -> tuple[SimSymbol, ...]:
    return tuple(value)


@attrs.frozen
class SimConfig:
    """The whole venue. `replay_path` (CSV or Parquet of ticks) replaces the synthetic feed when set; the
    funding model and matching are the same either way.

    Funding happens at every multiple of `funding_interval_ms` since the epoch; each symbol's rate is drawn
    uniformly from [-funding_rate_max_abs, +funding_rate_max_abs] and rounded to 6 decimals. The feed quotes every
    symbol every `quote_interval_ms`, starting at `start_ms`, until `end_ms` (None: forever)."""

    symbols: tuple[SimSymbol, ...] = attrs.field(factory=default_symbols, converter=_symbols_converter)
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    end_ms: int | None = None
    quote_interval_ms: int = 10_000
    initial_balance_usdt: Decimal = Decimal("10000")
    default_leverage: int = 5
    funding_interval_ms: int = 8 * HOUR_MS
    funding_rate_max_abs: Decimal = Decimal("0.0001")
    max_depth_levels: int = 50
    max_open_orders: int = 200
    max_history: int = 100_000
    max_outbox_frames: int = 1_000_000
    feed: FeedParams = attrs.field(factory=FeedParams)
    replay_path: Path | None = None

    def __attrs_post_init__(self) -> None:
        if not self.symbols:
            raise _fail("symbols", "at least one symbol is needed")
        if len(self.symbols) > MAX_SYMBOLS:
            raise _fail("symbols", f"at most {MAX_SYMBOLS} symbols, got {len(self.symbols)}")
        seen: set[Symbol] = set()
        for s in self.symbols:
            if not isinstance(s, SimSymbol):
                raise _fail("symbols", f"expected SimSymbol entries, got {s!r}")
            if s.symbol in seen:
                raise _fail("symbols", f"{s.symbol} is listed twice")
            seen.add(s.symbol)
        _check_int("seed", self.seed, 0)
        _check_int("start_ms", self.start_ms, 0)
        if self.end_ms is not None:
            _check_int("end_ms", self.end_ms, self.start_ms)
        _check_int("quote_interval_ms", self.quote_interval_ms, 1, 24 * HOUR_MS)
        _check_decimal("initial_balance_usdt", self.initial_balance_usdt, non_negative=True)
        _check_int("default_leverage", self.default_leverage, 1, 125)
        _check_int("funding_interval_ms", self.funding_interval_ms, 60_000, 7 * 24 * HOUR_MS)
        _check_decimal("funding_rate_max_abs", self.funding_rate_max_abs, non_negative=True)
        if self.funding_rate_max_abs > Decimal("0.05"):
            raise _fail("funding_rate_max_abs", f"at most 0.05 (5 % per interval), got {self.funding_rate_max_abs}")
        _check_int("max_depth_levels", self.max_depth_levels, 1, MAX_DEPTH_LEVELS)
        _check_int("max_open_orders", self.max_open_orders, 1, 100_000)
        _check_int("max_history", self.max_history, 1)
        _check_int("max_outbox_frames", self.max_outbox_frames, 100)
        if not isinstance(self.feed, FeedParams):
            raise _fail("feed", f"expected FeedParams, got {self.feed!r}")
        if self.replay_path is not None and not isinstance(self.replay_path, Path):
            raise _fail("replay_path", f"expected a pathlib.Path, got {self.replay_path!r}")

    def symbol_config(self, symbol: Symbol) -> SimSymbol:
        for s in self.symbols:
            if s.symbol == symbol:
                return s
        raise KeyError(f"{symbol} is not listed in SimConfig.symbols")

    def fingerprint(self) -> str:
        """A stable hash of everything that shapes the venue's behaviour; a snapshot records it so that it is
        never restored under a different configuration."""
        return hashlib.sha256(json.dumps(_plain(self), sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal | Path | Symbol):
        return str(value)
    return value
