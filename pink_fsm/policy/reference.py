"""The reference policy: re-derived from the original runtime's strategy layer. A reference, not trading advice.

On every call (every quote):
1. Observe: each quote newer than the last one seen for its symbol is one tick of that symbol's history
   (signal and DC gate). Quotes with a non-positive, non-finite or crossed book are skipped.
2. Holding (an open position, no exit being worked): EXIT on stop (urgent), take-profit or max hold.
3. Flat with entries allowed: the picker's top candidate, unless the DC gate contradicts a SHORT; size it with
   the alpha sizer: conviction = strategy leverage, qty = capital x capital_fraction x notional leverage / mid.
4. Otherwise HOLD.

Deterministic: no clock (time is `market.ts_ms`), no randomness; the same calls give the same decisions.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from pink_fsm.kernel.values import Side, Symbol
from pink_fsm.policy.config import ReferencePolicyConfig
from pink_fsm.policy.dc_gate import DcGate
from pink_fsm.policy.exits import ExitRule, exit_signal
from pink_fsm.policy.picker import AssetPicker, Candidate
from pink_fsm.policy.signals import AssetHistory
from pink_fsm.policy.sizer import AlphaSizer
from pink_fsm.ports import HOLD, Action, Decision, MarketView, SlotView

__all__ = ["ReferencePolicy", "reference_policy"]

LOG = logging.getLogger("pink_fsm.policy")


class ReferencePolicy:
    """Implements `pink_fsm.ports.Policy`.

    >>> from pink_fsm.ports import Quote
    >>> policy = ReferencePolicy(ReferencePolicyConfig())
    >>> fet = Symbol("FET", "USDT")
    >>> q = Quote(0, fet, Decimal("0.6090"), Decimal("0.6091"), Decimal("0.6091"))
    >>> slot = SlotView(0, "IDLE", True, True, None, Side.NONE, Decimal(0), Decimal(0), 0, Decimal(0),
    ...                 Decimal(1000), False)
    >>> policy.decide(MarketView(0, {fet: q}, fet), slot).action   # not warm yet
    <Action.HOLD: 'HOLD'>
    """

    def __init__(self, config: ReferencePolicyConfig | None = None) -> None:
        self.config = config = config or ReferencePolicyConfig()
        self.histories: dict[Symbol, AssetHistory] = {}
        self.dc_gate = DcGate(config.dc_lookback_ticks, config.dc_min_bps)
        self.picker = AssetPicker(entry_z=config.entry_z, max_spread_bps=config.max_spread_bps,
                                  allow_short=config.allow_short, allow_long=config.allow_long,
                                  cooldown_after_loss_ms=config.cooldown_after_loss_ms)
        self.sizer = AlphaSizer(config)
        self.exit_rule = ExitRule(config.tp_bps, config.stop_bps, config.max_hold_ms)
        self._universe = frozenset(config.universe)
        self._last_ts_ms = 0  # the latest market time seen: on_trade_closed has no clock of its own

    # ------------------------------------------------------------------ the port

    def decide(self, market: MarketView, slot: SlotView) -> Decision:
        self._observe(market)
        if not slot.flat:
            if slot.exit_pending or slot.symbol is None or slot.open_qty <= 0:
                return HOLD  # an exit is being worked, or the entry has not filled yet
            return self._decide_exit(market, slot, slot.symbol)
        if not slot.entries_allowed:
            return HOLD
        return self._decide_entry(market, slot)

    def on_trade_closed(self, symbol: Symbol, net_pnl_usdt: Decimal) -> None:
        if not isinstance(net_pnl_usdt, Decimal) or not net_pnl_usdt.is_finite():
            LOG.warning("policy_feedback_ignored", extra={"symbol": str(symbol), "net_pnl_usdt": repr(net_pnl_usdt)})
            return
        self.sizer.record_close(net_pnl_usdt)
        self.picker.note_close(symbol, net_pnl_usdt, self._last_ts_ms)

    # ------------------------------------------------------------------ steps

    def _observe(self, market: MarketView) -> None:
        self._last_ts_ms = market.ts_ms
        histories = self.histories
        for symbol, quote in market.quotes.items():
            history = histories.get(symbol)
            if history is None:
                history = self._admit(symbol)
                if history is None:
                    continue
            if quote.ts_ms <= history.last_ts_ms:
                continue  # not a new tick of this symbol (or out of order)
            bid, ask = quote.bid_px, quote.ask_px
            if not (bid.is_finite() and ask.is_finite() and 0 < bid <= ask):
                continue  # a corrupt book is no observation
            mid_px = (bid + ask) / 2
            history.observe(quote.ts_ms, float(mid_px))
            self.dc_gate.observe(symbol, mid_px)

    def _admit(self, symbol: Symbol) -> AssetHistory | None:
        """A history for a new symbol, if the universe allows it (bounded by max_symbols)."""
        if self._universe:
            if symbol not in self._universe:
                return None
        elif len(self.histories) >= self.config.max_symbols:
            return None
        history = self.histories[symbol] = AssetHistory(self.config.lookback_short_ticks,
                                                        self.config.lookback_long_ticks)
        return history

    def _decide_exit(self, market: MarketView, slot: SlotView, symbol: Symbol) -> Decision:
        quote = market.quotes.get(symbol)
        if quote is None:
            return HOLD  # the position's own price is unknown: never value it at another symbol's price
        signal = exit_signal(self.exit_rule, slot.side, slot.entry_px, slot.entry_ts_ms, quote, market.ts_ms)
        if signal is None:
            return HOLD
        return Decision(Action.EXIT, symbol=symbol, side=slot.side, qty=None, urgent=signal.urgent,
                        reason=signal.reason)

    def _decide_entry(self, market: MarketView, slot: SlotView) -> Decision:
        candidate = self.picker.pick(self.histories, market.quotes, market.ts_ms)
        if candidate is None:
            return HOLD
        if self.dc_gate.contradicts(candidate.symbol, candidate.side):
            return Decision(Action.HOLD, symbol=candidate.symbol, side=candidate.side, reason="DC_CONTRADICT")
        capital_usdt = slot.capital_usdt
        if not capital_usdt.is_finite() or capital_usdt <= 0:
            return Decision(Action.HOLD, reason="NO_CAPITAL")
        return self._enter(market, candidate, capital_usdt)

    def _enter(self, market: MarketView, candidate: Candidate, capital_usdt: Decimal) -> Decision:
        quote = market.quotes[candidate.symbol]  # the picker only picks quoted symbols
        mid_px = (quote.bid_px + quote.ask_px) / 2
        conviction = self.sizer.conviction(candidate.strength)
        notional_usdt = capital_usdt * self.config.capital_fraction * self.sizer.notional_leverage(conviction)
        qty = notional_usdt / mid_px
        assert qty > 0 and self.sizer.lev_min <= conviction <= self.sizer.cap, (qty, conviction)
        sign = "-" if candidate.side is Side.SHORT else "+"
        return Decision(Action.ENTER, symbol=candidate.symbol, side=candidate.side, qty=qty, conviction=conviction,
                        reason=f"SIGNAL z={sign}{candidate.strength:.2f} lev={conviction}")


def reference_policy(**options: Any) -> ReferencePolicy:
    """Build the reference policy from plain options (what `load_policy("reference", options)` calls).

    >>> reference_policy(tp_bps=60).config.tp_bps
    Decimal('60')
    """
    return ReferencePolicy(ReferencePolicyConfig.from_mapping(options))
