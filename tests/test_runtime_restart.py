"""Restart in the middle of a trade: a second Engine recovered from the same venue's truth (open orders FIRST,
then positions, then the wallet: D9) with a new kernel session, then the run goes on (D5, D8, D9, D15).

Each scenario asserts: no double entry (the venue never holds more than the first trade's lots), nothing booked
twice (the kernel's capital equals the venue's wallet after the trade closes), the earlier session's orders are
cancelled. `runtime_helpers.restart` does what the composition root must do on a restart: send recovery's
cancels and tell the engine (`Engine.expect_recovered_orders`) the filled qty seen at recovery per order.
"""

from __future__ import annotations

from decimal import Decimal as D

from runtime_helpers import (
    FET,
    WALLET,
    Cancelled,
    Placed,
    ScriptedPolicy,
    ScriptedVenue,
    client,
    enter,
    exit_,
    quotes,
    restart,
    run_until,
    start,
)

from pink_fsm.runtime.engine import Engine

ASK, BID = D("0.6092"), D("0.6090")
MAKER = D("0.0002")


def first_session(venue: ScriptedVenue, crash_ms: int, script: list) -> Engine:  # type: ignore[type-arg]
    engine, _ = start(venue, ScriptedPolicy(script))
    run_until(venue, engine, crash_ms)
    return engine  # then the process dies: the engine object is dropped


def sent(venue: ScriptedVenue) -> list[tuple[str, str, str]]:
    return [("place" if isinstance(e, Placed) else "cancel", e.client_id,
             f"{e.order_type} {e.side} {e.qty}{' RO' if e.reduce_only else ''}" if isinstance(e, Placed)
             else ("found" if isinstance(e, Cancelled) and e.found else "gone")) for e in venue.log]


def test_restart_with_a_working_entry_cancels_it_and_enters_once() -> None:
    """(a) Maker entry quote resting, nothing filled: recovery cancels the old session's quote; the new session
    starts flat and its one entry is the only exposure (D9, no_double_entry)."""
    venue = ScriptedVenue(quotes(FET, str(BID), str(ASK), 1_000, 60_000))
    old = first_session(venue, 5_000, [(2_000, enter())])
    assert old.kernel.slot.state == "ENTRY_WORKING"
    policy = ScriptedPolicy([(10_000, enter()), (20_000, exit_())])
    engine, recovery = restart(venue, policy, session="1")
    assert recovery.adopted == "" and [c.client_id.value for c in recovery.cancels] == [client("0", 1, 1)]
    assert engine.kernel.slot.state == "IDLE" and engine.slot_view().entries_allowed
    venue.at(12_000, lambda: venue.fill(client("1", 1, 1), "100", ASK))
    venue.at(22_000, lambda: venue.fill(client("1", 2, 1), "100", BID))
    run_until(venue, engine, 40_000)
    assert sent(venue) == [("place", client("0", 1, 1), "LIMIT SELL 100"), ("cancel", client("0", 1, 1), "found"),
                           ("place", client("1", 1, 1), "LIMIT SELL 100"),
                           ("place", client("1", 2, 1), "LIMIT BUY 100 RO")]
    assert venue.max_abs_lots[FET] == 100
    gross, fees = D(100) * (ASK - BID), D(100) * (ASK + BID) * MAKER
    assert (engine.trades[1].realised_pnl_usdt, engine.trades[1].fees_usdt) == (gross, fees)
    assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET + gross - fees
    assert engine.kernel.counters["RECOVERED_ORDER_FRAME"] == 1  # the old quote's CANCELED frame
    assert engine.metrics.invariant_failures == 0


def test_restart_with_a_working_exit_adopts_the_position_and_closes_it_once() -> None:
    """(b) Position open, maker exit resting: recovery adopts the position (entry basis from the venue), cancels
    the old exit, and the new session's exit closes it; the entry fee is in the wallet already, never re-booked."""
    venue = ScriptedVenue(quotes(FET, str(BID), str(ASK), 1_000, 60_000))
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    old = first_session(venue, 12_000, [(2_000, enter()), (10_000, exit_())])
    assert old.kernel.slot.state == "EXIT_ACKED"
    policy = ScriptedPolicy([(13_000, enter()), (15_000, exit_())])
    engine, recovery = restart(venue, policy, session="1")
    assert recovery.adopted == f"SHORT 100 FET-USDT @ {ASK}"
    assert [c.client_id.value for c in recovery.cancels] == [client("0", 2, 1)]
    assert engine.kernel.slot.state == "POSITION_OPEN" and engine.kernel.capital_usdt == venue.wallet_usdt
    venue.at(17_000, lambda: venue.fill(client("1", 2, 1), "100", BID))
    run_until(venue, engine, 30_000)
    assert sent(venue) == [("place", client("0", 1, 1), "LIMIT SELL 100"),
                           ("place", client("0", 2, 1), "LIMIT BUY 100 RO"), ("cancel", client("0", 2, 1), "found"),
                           ("place", client("1", 2, 1), "LIMIT BUY 100 RO")]
    assert venue.max_abs_lots[FET] == 100 and venue.position_qty() == 0
    assert engine.metrics.decisions["ENTER_NOT_ALLOWED"] == 1
    trade = engine.trades[1]  # the adopted trade books from recovery on: the exit leg only
    assert (trade.realised_pnl_usdt, trade.fees_usdt) == (D(100) * (ASK - BID), D(100) * BID * MAKER)
    assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET + D(100) * (ASK - BID) - D(100) * (
        ASK + BID) * MAKER
    assert engine.kernel.slot.state == "TRADE_TERMINAL_WRITTEN" and engine.metrics.invariant_failures == 0


def test_restart_with_a_partial_entry_fill_adopts_what_filled_and_never_tops_up() -> None:
    """(c) Entry part-filled (40 of 100), remainder resting: recovery adopts the 40, cancels the remainder; its
    CANCELED frame (z=40) repeats what the adopted position holds and is not booked; no re-entry, the exit is
    sized 40, capital equals the wallet after the close."""
    venue = ScriptedVenue(quotes(FET, str(BID), str(ASK), 1_000, 60_000))
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "40", ASK))
    old = first_session(venue, 8_000, [(2_000, enter())])
    assert old.kernel.slot.state == "ENTRY_PARTIAL"
    policy = ScriptedPolicy([(10_000, enter()), (12_000, exit_())])
    engine, recovery = restart(venue, policy, session="1")
    assert recovery.adopted == f"SHORT 40 FET-USDT @ {ASK}"
    assert engine.kernel.counters["RECOVERED_ORDER_FRAME"] == 2  # CANCELED frame: its fill part and its end
    assert not engine.kernel.slot.model.entries_frozen and engine.kernel.counters["UNKNOWN_OWN"] == 0
    venue.at(14_000, lambda: venue.fill(client("1", 2, 1), "40", BID))
    run_until(venue, engine, 30_000)
    assert sent(venue) == [("place", client("0", 1, 1), "LIMIT SELL 100"), ("cancel", client("0", 1, 1), "found"),
                           ("place", client("1", 2, 1), "LIMIT BUY 40 RO")]
    assert venue.max_abs_lots[FET] == 40 and venue.position_qty() == 0
    assert engine.metrics.decisions["ENTER_NOT_ALLOWED"] == 1
    trade = engine.trades[1]
    assert (trade.qty_lots, trade.realised_pnl_usdt, trade.fees_usdt) == (40, D(40) * (ASK - BID),
                                                                          D(40) * BID * MAKER)
    assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET + D(40) * (ASK - BID) - D(40) * (
        ASK + BID) * MAKER


def test_a_fill_racing_recoverys_own_cancel_is_reconciled_not_orphaned() -> None:
    """(d) Entry part-filled (40 of 100) when the process dies; at recovery the venue shows 40, but 20 more
    fill while recovery's cancel is on its way (its CANCELED frame says z=60). That fill is exposure no order of
    this session owns: entries stop, the kernel is reconciled with the venue again (open orders first, then
    positions, then the wallet) and adopts the 60, and the exit closes all 60 - nothing is left orphaned at the
    venue and capital equals the wallet (found by pink-codegen verify's recovery analysis)."""
    venue = ScriptedVenue(quotes(FET, str(BID), str(ASK), 1_000, 60_000))
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "40", ASK))
    first_session(venue, 8_000, [(2_000, enter())])
    venue.fill_on_cancel[client("0", 1, 1)] = ("20", ASK)
    policy = ScriptedPolicy([(10_000, enter()), (12_000, exit_())])
    engine, recovery = restart(venue, policy, session="1")
    assert recovery.adopted == f"SHORT 40 FET-USDT @ {ASK}"
    assert venue.position_qty() == D(-60)
    assert engine.kernel.counters["RECOVERED_ORDER_FILLED_LATE"] == 1
    assert not engine.slot_view().entries_allowed  # until the venue is read again
    venue.at(14_000, lambda: [venue.fill(o.request.client_id, "60", BID) for o in list(venue.orders.values())
                              if o.open and o.request.reduce_only])
    run_until(venue, engine, 30_000)
    assert venue.position_qty() == 0, "the exit must close everything the venue holds"
    assert venue.max_abs_lots[FET] == 60
    assert engine.metrics.decisions["ENTER_NOT_ALLOWED"] == 1  # no re-entry on top of the position
    assert engine.kernel.flat and engine.kernel.capital_usdt == venue.wallet_usdt
