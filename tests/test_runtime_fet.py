"""The FET incident (DEFECTS.md, D1 + D2) replayed end to end: policy -> Engine -> router -> scripted venue ->
BingX frames -> normaliser -> kernel, on the virtual clock with the production SimDriver.

Short 18,005 FET, exchange leverage 3, MARKET sell filled at 0.6091; close with a MARKET buy whose frames carry
the protective price p = 0.7200 (mark + 20 %) and the fill avgPrice ap = 0.6000; taker 0.05 % per leg. Booked:
+163.8455 gross, fees 10.88492275, net +152.96057725 - never the incident's -5,990.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from runtime_helpers import FET, WALLET, ScriptedPolicy, ScriptedVenue, client, enter, exit_, quotes, run_until, start

from pink_fsm.generated.router import Style
from pink_fsm.kernel import Side, normaliser
from pink_fsm.runtime.exec_router import ExecConfig

FET_GROSS = D("163.8455")
FET_FEES = D("10.88492275")
FET_NET = D("152.96057725")
PROTECTIVE_PX = D("0.7200")


def fet_replay() -> tuple[ScriptedVenue, Any]:
    schedule = quotes(FET, "0.6091", "0.6093", 1_000, 9_000) + quotes(FET, "0.5999", "0.6000", 10_000, 20_000)
    venue = ScriptedVenue(schedule)
    venue.market_ref_px = lambda r, q: PROTECTIVE_PX if r.side == "BUY" else q.bid_px
    policy = ScriptedPolicy([(2_000, enter(Side.SHORT, "18005", conviction="3")), (10_000, exit_())])
    engine, _ = start(venue, policy, exec_config=ExecConfig(entry_style=Style.TAKER, exit_style=Style.TAKER))
    run_until(venue, engine, 20_000)
    return venue, engine


def test_fet_replay_end_to_end_books_the_true_fill_price_without_leverage() -> None:
    """D1 + D2 end to end: +163.8455 gross at the venue's avgPrice, fees 10.88492275, net +152.96057725;
    capital == the venue's wallet; leverage 3 only reached the venue's margin setting."""
    venue, engine = fet_replay()
    entry, exit_order = venue.orders[client("0", 1, 1)], venue.orders[client("0", 2, 1)]
    assert (entry.request.side, entry.request.qty, entry.status) == ("SELL", D(18005), "FILLED")
    assert (exit_order.request.side, exit_order.request.qty, exit_order.request.reduce_only) == ("BUY", D(18005), True)
    assert exit_order.ref_px == PROTECTIVE_PX and exit_order.cum_quote_usdt == D(18005) * D("0.6000")
    assert venue.leverage == {FET: 3}
    trade = engine.trades[1]
    assert (trade.side, trade.qty_lots, trade.entry_vwap_px) == (Side.SHORT, 18005, D("0.6091"))
    assert (trade.realised_pnl_usdt, trade.fees_usdt, trade.net_usdt) == (FET_GROSS, FET_FEES, FET_NET)
    summary = engine.summary()
    assert (D(summary["gross_pnl_usdt"]), D(summary["fees_usdt"]), D(summary["net_pnl_usdt"])) == (
        FET_GROSS, FET_FEES, FET_NET)
    assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET + FET_NET
    assert engine.kernel.slot.state == "TRADE_TERMINAL_WRITTEN" and engine.metrics.invariant_failures == 0


def test_fet_replay_with_the_d2_mutant_books_the_protective_price(monkeypatch: pytest.MonkeyPatch) -> None:
    """D2 mutant (test-only): the normaliser books at the order's price p: the end-to-end replay then books
    18,005 x (0.6091 - 0.7200) = -1,996.7545, so the regression above can fail."""
    real_fill = normaliser._fill

    def booked_at_order_price(o: Any, ref: Any, ts_ms: int, cum_qty: D) -> Any:
        return real_fill({**o, "ap": o["p"]} if o.get("p") else o, ref, ts_ms, cum_qty)

    monkeypatch.setattr(normaliser, "_fill", booked_at_order_price)
    _, engine = fet_replay()
    assert engine.trades[1].realised_pnl_usdt == D("-1996.7545")
    assert engine.trades[1].net_usdt != FET_NET
