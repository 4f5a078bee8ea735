"""The DC gate (direction confirmation), per asset: a SHORT entry is blocked when the mid price rose by at least
`min_bps` over the last `lookback_ticks` ticks of that same asset.

Re-derived from the original `_dc_contradicts` (7 ticks, 0.75 bps): it compared the newest price with the one
`lookback` ticks earlier (so it needs lookback + 1 prices) and allowed the entry while history was short. Two
deliberate differences:
* The threshold is inclusive (`>=`), as the original's docstring and DEFECTS.md state; its code used `>`.
* The comparison is exact Decimal arithmetic, `(p1 - p0) x 10_000 >= min_bps x p0`, so the boundary is the
  boundary (a float quotient can land either side of 0.75).
There is no LONG mirror: the original only ever entered SHORT and its gate had no LONG rule.
Histories are per asset (the original's fix of 2026-06-10): one mixed deque would compare two symbols' prices.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from pink_fsm.kernel.values import Side, Symbol

__all__ = ["DcGate"]

_BPS = Decimal(10_000)


class DcGate:
    """Per-asset price histories (each at most lookback + 1 prices) and the SHORT-entry test.

    >>> gate = DcGate(lookback_ticks=1, min_bps=Decimal("0.75"))
    >>> s = Symbol("FET", "USDT")
    >>> gate.observe(s, Decimal("10000")); gate.observe(s, Decimal("10000.75"))
    >>> gate.contradicts(s, Side.SHORT), gate.contradicts(s, Side.LONG)
    (True, False)
    """

    __slots__ = ("_histories", "lookback_ticks", "min_bps")

    def __init__(self, lookback_ticks: int, min_bps: Decimal) -> None:
        assert lookback_ticks > 0 and min_bps >= 0, (lookback_ticks, min_bps)
        self.lookback_ticks = lookback_ticks
        self.min_bps = min_bps
        self._histories: dict[Symbol, deque[Decimal]] = {}

    def observe(self, symbol: Symbol, px: Decimal) -> None:
        """One new tick of `symbol` (the caller passes only new quotes with a positive price)."""
        history = self._histories.get(symbol)
        if history is None:
            history = self._histories[symbol] = deque(maxlen=self.lookback_ticks + 1)
        history.append(px)

    def rise_bps(self, symbol: Symbol) -> Decimal | None:
        """The change over the lookback in bps, or None while the history is shorter than lookback + 1."""
        history = self._histories.get(symbol)
        if history is None or len(history) <= self.lookback_ticks:
            return None
        return (history[-1] - history[0]) * _BPS / history[0]

    def contradicts(self, symbol: Symbol, side: Side) -> bool:
        """True when an ENTER of `side` on `symbol` must be blocked. Short history: allowed (as the original)."""
        if side is not Side.SHORT:
            return False
        history = self._histories.get(symbol)
        if history is None or len(history) <= self.lookback_ticks:
            return False
        p0, p1 = history[0], history[-1]
        return (p1 - p0) * _BPS >= self.min_bps * p0
