"""The alpha sizer: signal strength -> strategy leverage (the conviction handed to the kernel).

    x        = clamp((strength - entry_z) / (full_z - entry_z), 0, 1)
    raw      = leverage_min + (leverage_max - leverage_min) * x^3          cubic-convex: weak signals get little
    lev      = raw * shrink^min(loss_streak, loss_streak_max) * boost       feedback and boost
    lev      = min(strategy_max_leverage, max(leverage_min, lev))           the original's boost rule, always on
    lev      = floor to 0.01

So the conviction always lies in [leverage_min, strategy_max_leverage] (within [0.5, 8.0] by default). The
kernel maps it to an integer exchange leverage (D10); the kernel's own `leverage_boost` must stay 1 when this
sizer boosts, or the boost is applied twice.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal

from pink_fsm.kernel.leverage import exchange_leverage
from pink_fsm.policy.config import ReferencePolicyConfig

__all__ = ["AlphaSizer"]

_CENT = Decimal("0.01")
# The policy does not know the venue's maximum leverage; the kernel clamps to it. For the notional bound only
# the rounding matters, so a cap no contract reaches stands in for it.
_NO_VENUE_CAP = 1_000


class AlphaSizer:
    """Signal strength -> conviction, with the losing-streak feedback of `on_trade_closed`.

    >>> sizer = AlphaSizer(ReferencePolicyConfig())
    >>> sizer.conviction(1.5), sizer.conviction(3.5), sizer.conviction(2.5)
    (Decimal('0.5'), Decimal('8.0'), Decimal('1.43'))
    """

    __slots__ = ("_boost", "_full_z", "_lev_max", "_lev_min", "_shrink", "_span", "_streak_max", "_z0", "cap",
                 "lev_min", "loss_streak")

    def __init__(self, config: ReferencePolicyConfig) -> None:
        self._z0 = config.entry_z
        self._full_z = config.full_z
        self._lev_min = float(config.leverage_min)
        self._lev_max = float(config.leverage_max)
        self._span = self._lev_max - self._lev_min
        self._shrink = float(config.loss_shrink)
        self._streak_max = config.loss_streak_max
        self._boost = float(config.leverage_boost)
        self.lev_min = config.leverage_min
        self.cap = config.strategy_max_leverage
        self.loss_streak = 0

    def raw_leverage(self, strength: float) -> float:
        """The cubic-convex curve alone (no feedback, boost or cap), in [leverage_min, leverage_max]."""
        x = (strength - self._z0) / (self._full_z - self._z0)
        x = 0.0 if not x > 0.0 else min(x, 1.0)  # `not x > 0` also sends NaN to the floor
        return self._lev_min + self._span * x * x * x

    def conviction(self, strength: float) -> Decimal:
        """Strategy leverage for a signal of `strength` (>= 0), after loss feedback, boost and the cap."""
        lev = self.raw_leverage(strength) * self._shrink ** min(self.loss_streak, self._streak_max) * self._boost
        if not math.isfinite(lev):
            lev = self._lev_min
        conviction = Decimal(repr(lev)).quantize(_CENT, rounding=ROUND_FLOOR)
        conviction = min(self.cap, max(self.lev_min, conviction))
        assert self.lev_min <= conviction <= self.cap, conviction
        return conviction

    def notional_leverage(self, conviction: Decimal) -> Decimal:
        """The leverage the entry's notional may use: the conviction, but never above the integer exchange
        leverage the kernel will set for it (conviction 2.4 sets leverage 2 at the venue, so a 2.4x notional
        would not have the margin and the kernel refuses it, no_leverage_inflation)."""
        whole = exchange_leverage(conviction, venue_max=_NO_VENUE_CAP, strategy_max=self.cap)
        return min(conviction, Decimal(whole))

    def record_close(self, net_pnl_usdt: Decimal) -> None:
        """Feedback from a finished trade: a loss extends the losing streak (smaller sizes), a win resets it."""
        if net_pnl_usdt < 0:
            self.loss_streak = min(self.loss_streak + 1, self._streak_max)
        elif net_pnl_usdt > 0:
            self.loss_streak = 0
