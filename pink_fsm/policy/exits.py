"""Exit rules of the reference policy: stop-loss, take-profit (in bps of the entry price) and maximum hold time.

The position is valued at the price it would close at: the bid for a LONG (we would sell), the ask for a SHORT
(we would buy back), so the spread counts against the trade. Comparisons are exact Decimal arithmetic without
division: `gain x 10_000 >= tp_bps x entry_px`. The stop is checked first and is the only urgent exit: a stop
must pre-empt a resting maker exit, a take-profit or a timeout need not.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from pink_fsm.kernel.values import Side
from pink_fsm.ports import Quote

__all__ = ["ExitRule", "ExitSignal", "exit_signal"]

_BPS = Decimal(10_000)


@attrs.frozen
class ExitRule:
    tp_bps: Decimal
    stop_bps: Decimal
    max_hold_ms: int


@attrs.frozen
class ExitSignal:
    reason: str  # "STOP" | "TAKE_PROFIT" | "MAX_HOLD"
    urgent: bool


STOP = ExitSignal("STOP", urgent=True)
TAKE_PROFIT = ExitSignal("TAKE_PROFIT", urgent=False)
MAX_HOLD = ExitSignal("MAX_HOLD", urgent=False)


def exit_signal(rule: ExitRule, side: Side, entry_px: Decimal, entry_ts_ms: int, quote: Quote,
                ts_ms: int) -> ExitSignal | None:
    """The exit that fires now for a position of `side` entered at `entry_px`, or None.

    A non-positive entry price (not yet known) disables the price rules; the hold timer still runs."""
    if side is Side.LONG:
        gain_px = quote.bid_px - entry_px
    elif side is Side.SHORT:
        gain_px = entry_px - quote.ask_px
    else:
        return None
    if entry_px > 0:
        gain_x_bps = gain_px * _BPS
        if gain_x_bps <= -rule.stop_bps * entry_px:
            return STOP
        if gain_x_bps >= rule.tp_bps * entry_px:
            return TAKE_PROFIT
    if ts_ms - entry_ts_ms >= rule.max_hold_ms:
        return MAX_HOLD
    return None
