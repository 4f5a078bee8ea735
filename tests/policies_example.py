"""The minimal user policy shown in docs/policy.md (the test suite loads it by import path and checks that the
page shows exactly this code). Load it with `--policy policies_example:TimeoutPolicy`."""

# --- docs/policy.md example begins
from __future__ import annotations

from decimal import Decimal

from pink_fsm.kernel.values import Side, Symbol
from pink_fsm.ports import HOLD, Action, Decision, MarketView, SlotView


class TimeoutPolicy:
    """Go LONG on the symbol that just quoted, at a fixed leverage; close after `hold_ms`. A demo, not advice."""

    def __init__(self, hold_ms: int = 60_000, leverage: str = "1") -> None:
        if hold_ms <= 0:
            raise ValueError(f"hold_ms: must be > 0, got {hold_ms}")
        self.hold_ms = hold_ms
        self.leverage = Decimal(leverage)  # the conviction; the kernel maps it to an integer venue leverage
        self.closed_trades = 0

    def decide(self, market: MarketView, slot: SlotView) -> Decision:
        if slot.flat:
            if not slot.entries_allowed:
                return HOLD
            quote = market.quotes[market.trigger]
            qty = slot.capital_usdt * self.leverage / quote.ask_px  # base units; the kernel floors to lots
            return Decision(Action.ENTER, symbol=market.trigger, side=Side.LONG, qty=qty,
                            conviction=self.leverage, reason="demo entry")
        holding = slot.open_qty > 0 and not slot.exit_pending
        if holding and market.ts_ms - slot.entry_ts_ms >= self.hold_ms:
            return Decision(Action.EXIT, symbol=slot.symbol, side=slot.side, reason="demo timeout")
        return HOLD

    def on_trade_closed(self, symbol: Symbol, net_pnl_usdt: Decimal) -> None:
        self.closed_trades += 1


def make_timeout_policy(**options: object) -> TimeoutPolicy:
    """A factory works as well as a class: `--policy policies_example:make_timeout_policy`."""
    return TimeoutPolicy(**options)  # type: ignore[arg-type]
# --- docs/policy.md example ends
