"""Per-asset rolling price history and the reference signal: a velocity divergence of the mid price.

The original runtime read `vel_div` from an external scan. Here it is derived from the quotes alone:

    v_short = (log p[t] - log p[t - S]) / S          velocity over the short lookback, per tick
    v_long  = (log p[t] - log p[t - L]) / L          velocity over the long lookback, per tick
    z       = (v_short - v_long) / (sigma * sqrt(1/S - 1/L))

`sigma` is the root mean square of the last L one-tick log returns. For a driftless random walk
Var(v_short - v_long) = sigma^2 (1/S - 1/L), so `z` is a unit-free score (about N(0, 1) on noise) that ranks
symbols of different volatility fairly. z < 0: the price is falling faster now than over the long window
(a SHORT signal); z > 0: the mirror (a LONG signal).

Floats are used on purpose: this runs on every quote and only ranks; nothing here becomes an order number.
"""

from __future__ import annotations

import math

__all__ = ["AssetHistory"]

# Recompute the running sum of squares from scratch this often: subtracting old squares from a running sum
# accumulates rounding error, and a periodic exact sum bounds it.
_RESUM_EVERY_TICKS = 1_000


class AssetHistory:
    """The rolling history of one symbol: the last L + 1 log mid prices and L one-tick returns.

    >>> h = AssetHistory(short_ticks=2, long_ticks=4)
    >>> for i, px in enumerate([100.0, 100.0, 100.0, 100.0, 99.0]):
    ...     h.observe(i, px)
    >>> h.warm, h.z < 0
    (True, True)
    """

    __slots__ = ("_log_px", "_n_seen", "_pos", "_returns", "_scale", "_short", "_sumsq", "last_ts_ms", "z")

    def __init__(self, short_ticks: int, long_ticks: int) -> None:
        assert 0 < short_ticks < long_ticks, (short_ticks, long_ticks)
        self._short = short_ticks
        self._log_px = [0.0] * (long_ticks + 1)  # ring: index _pos is the newest
        self._returns = [0.0] * long_ticks  # ring, same position arithmetic modulo L
        self._pos = -1
        self._n_seen = 0
        self._sumsq = 0.0
        self._scale = math.sqrt(1.0 / short_ticks - 1.0 / long_ticks)
        self.last_ts_ms = -1
        self.z = 0.0  # 0 until warm: no signal is not a signal

    @property
    def long_ticks(self) -> int:
        return len(self._returns)

    @property
    def warm(self) -> bool:
        """True once L + 1 prices (so L returns) have been seen: the long velocity and sigma are defined."""
        return self._n_seen > len(self._returns)

    def observe(self, ts_ms: int, px: float) -> None:
        """Record one new mid price (> 0, finite; the caller filters) and refresh `z`."""
        long_ticks = len(self._returns)
        log_px = math.log(px)
        ring = self._log_px
        size = long_ticks + 1
        if self._n_seen:
            ret = log_px - ring[self._pos]
            slot = self._n_seen % long_ticks
            old = self._returns[slot]
            self._returns[slot] = ret
            self._sumsq += ret * ret - old * old
            if self._n_seen % _RESUM_EVERY_TICKS == 0:
                self._sumsq = math.fsum(r * r for r in self._returns)
        self._pos = (self._pos + 1) % size
        ring[self._pos] = log_px
        self._n_seen += 1
        self.last_ts_ms = ts_ms
        if self._n_seen <= long_ticks:
            return
        sigma = math.sqrt(max(self._sumsq, 0.0) / long_ticks)
        if sigma <= 0.0:
            self.z = 0.0  # a frozen price carries no direction
            return
        short = self._short
        v_short = (log_px - ring[(self._pos - short) % size]) / short
        v_long = (log_px - ring[(self._pos + 1) % size]) / long_ticks  # the oldest entry is L ticks back
        self.z = (v_short - v_long) / (sigma * self._scale)
