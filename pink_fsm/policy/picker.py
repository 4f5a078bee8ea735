"""The ranked asset picker: which symbol of the universe to enter, and on which side.

Each warm symbol is scored by its signal in the direction of an allowed side (strength = -z for SHORT, +z for
LONG). A symbol is a candidate when its strength reaches `entry_z`, it is not cooling down after a losing
trade, its quote is fresh and its spread is at most `max_spread_bps`. Candidates rank by strength, strongest
first; equal strengths rank by symbol, so the pick never depends on the order quotes arrived in.

Re-derived from the original's IRP picker (rank the universe, take the top candidate, no fallback asset when
none passes). Filters run cheapest first: this is called on every quote while the slot is flat.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs

from pink_fsm.kernel.values import Side, Symbol
from pink_fsm.policy.signals import AssetHistory
from pink_fsm.ports import Quote

__all__ = ["AssetPicker", "Candidate"]

_BPS = Decimal(10_000)
# A quote older than this (relative to the market view) describes a market that may have moved: not pickable.
MAX_QUOTE_AGE_MS = 60_000


@attrs.frozen
class Candidate:
    symbol: Symbol
    side: Side
    strength: float  # the signal in the side's direction, >= entry_z


class AssetPicker:
    """Ranks the universe; remembers a cool-down per symbol after a losing trade (bounded by the universe)."""

    __slots__ = ("_allow_long", "_allow_short", "_cooldown_ms", "_entry_z", "_max_spread_bps", "cooldown_until_ms")

    def __init__(self, *, entry_z: float, max_spread_bps: Decimal, allow_short: bool, allow_long: bool,
                 cooldown_after_loss_ms: int) -> None:
        assert allow_short or allow_long
        self._entry_z = entry_z
        self._max_spread_bps = max_spread_bps
        self._allow_short = allow_short
        self._allow_long = allow_long
        self._cooldown_ms = cooldown_after_loss_ms
        self.cooldown_until_ms: dict[Symbol, int] = {}

    def note_close(self, symbol: Symbol, net_pnl_usdt: Decimal, ts_ms: int) -> None:
        """A losing trade on `symbol` cools it down until ts_ms + cooldown; a win or a scratch does not."""
        if net_pnl_usdt < 0 and self._cooldown_ms > 0:
            self.cooldown_until_ms[symbol] = ts_ms + self._cooldown_ms

    def _strength(self, z: float) -> tuple[Side, float]:
        if self._allow_short and (z < 0 or not self._allow_long):
            return Side.SHORT, -z
        return Side.LONG, z

    def _passes(self, symbol: Symbol, quote: Quote | None, ts_ms: int) -> bool:
        if quote is None or ts_ms - quote.ts_ms > MAX_QUOTE_AGE_MS:
            return False
        until_ms = self.cooldown_until_ms.get(symbol)
        if until_ms is not None and ts_ms < until_ms:
            return False
        bid, ask = quote.bid_px, quote.ask_px
        return (ask - bid) * _BPS * 2 <= self._max_spread_bps * (ask + bid)  # spread / mid, without dividing

    def pick(self, histories: Mapping[Symbol, AssetHistory], quotes: Mapping[Symbol, Quote],
             ts_ms: int) -> Candidate | None:
        """The top candidate, or None. Same result as `rank(...)[0]`, in one pass."""
        best_symbol: Symbol | None = None
        best_side, best_strength = Side.NONE, 0.0
        entry_z = self._entry_z
        for symbol, history in histories.items():
            if not history.warm:
                continue
            side, strength = self._strength(history.z)
            if not strength >= entry_z:  # written so that a NaN signal is never a candidate
                continue
            if best_symbol is not None and (strength < best_strength
                                            or (strength == best_strength and symbol > best_symbol)):
                continue
            if not self._passes(symbol, quotes.get(symbol), ts_ms):
                continue
            best_symbol, best_side, best_strength = symbol, side, strength
        return None if best_symbol is None else Candidate(best_symbol, best_side, best_strength)

    def rank(self, histories: Mapping[Symbol, AssetHistory], quotes: Mapping[Symbol, Quote],
             ts_ms: int) -> list[Candidate]:
        """Every candidate, best first (for inspection and tests; `decide` uses `pick`)."""
        out = []
        for symbol, history in histories.items():
            if not history.warm:
                continue
            side, strength = self._strength(history.z)
            if strength >= self._entry_z and self._passes(symbol, quotes.get(symbol), ts_ms):
                out.append(Candidate(symbol, side, strength))
        out.sort(key=lambda c: (-c.strength, c.symbol))
        return out
