"""The generated slot machine makes the historic defects impossible (DEFECTS.md ids in the test names' docs)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pink_fsm.fsm.machine import EventParamError, InvariantViolation, UnhandledEvent
from pink_fsm.generated.slot import Role, Side, SlotMachine

FAR_MS = 3_600_000  # an own fill an hour ago: outside the hot window


def enter(m: SlotMachine, *, order: int = 1, side: Side = Side.SHORT, lots: int = 100, px: str = "1",
          leverage: int = 3, legs: int = 1, ratio_0: str = "0", ratio_1: str = "0", probe_ok: bool = True,
          venue_lots: int = 0, fill_age_ms: int = FAR_MS) -> str:
    step = m.enter(order=order, new_side=side, qty_lots=lots, px=D(px), new_leverage=leverage, exit_legs=legs,
                   new_leg_ratio_0=D(ratio_0), new_leg_ratio_1=D(ratio_1), probe_ok=probe_ok,
                   venue_position_lots=venue_lots, own_fill_age_ms=fill_age_ms)
    return step.outcome


def fill(m: SlotMachine, order: int, cum_lots: int, cum_quote: str, cum_fee: str = "0") -> str:
    return m.fill(order=order, cum_lots=cum_lots, cum_quote_usdt=D(cum_quote), cum_fee_usdt=D(cum_fee)).outcome


def test_fet_round_trip_books_the_true_fill_price_and_no_leverage() -> None:
    """D1 + D2: short 18,005 FET at 0.6091 x3, closed by a MARKET buy with protective price 0.72 that filled at
    0.6000: +163.85 gross, about +152.96 net of 0.05 % taker fees, never -5,990."""
    m = SlotMachine()
    assert enter(m, lots=18005, px="0.6091", leverage=3) == "OK"
    entry_quote = D(18005) * D("0.6091")
    fill(m, 1, 18005, str(entry_quote), str(entry_quote * D("0.0005")))
    step = m.exit(order=2, qty_lots=0)
    assert step.emitted == (("PLACE_ORDER", {"order": 2, "role": Role.EXIT, "side": Side.SHORT, "qty_lots": 18005,
                                             "reduce_only": True}),)
    exit_quote = D(18005) * D("0.6000")  # the venue's avgPrice, not the 0.7200 protective price
    step = m.fill(order=2, cum_lots=18005, cum_quote_usdt=exit_quote, cum_fee_usdt=exit_quote * D("0.0005"))
    assert step.dest == "CLOSED"
    assert m.model.realised_pnl_usdt == D("163.8455")
    assert m.model.fees_usdt == D("10.88492275")
    assert m.model.realised_pnl_usdt - m.model.fees_usdt == D("152.96057725")
    assert step.emitted[0][0] == "TRADE_CLOSED" and step.emitted[0][1]["realised_pnl_usdt"] == D("163.8455")


def test_entry_basis_is_the_vwap_of_all_entry_fills() -> None:
    """D4: two entry fills at 1.00 and 1.30 give a basis of 1.20, not the last price."""
    m = SlotMachine()
    enter(m, side=Side.LONG, lots=30)
    fill(m, 1, 10, "10")            # 10 @ 1.00
    fill(m, 1, 30, "36")            # +20 @ 1.30
    assert m.model.entry_cost_usdt / m.model.entry_filled_lots == D("1.2")
    m.exit(order=2, qty_lots=0)
    fill(m, 2, 30, "39")            # all out @ 1.30
    assert m.model.realised_pnl_usdt == D("3")  # 30 x (1.30 - 1.20)


def test_late_entry_fill_during_exit_books_as_entry() -> None:
    """D3: an entry-remainder fill arriving while the exit works enlarges the position; it is not an exit."""
    m = SlotMachine()
    enter(m, lots=100)
    fill(m, 1, 60, "60")
    m.cancel(order=1)
    m.exit(order=2, qty_lots=0)     # requested while the entry cancel is in flight
    assert m.state == "EXIT_REQUESTED"
    step = m.fill(order=1, cum_lots=80, cum_quote_usdt=D(80), cum_fee_usdt=D(0))
    assert step.outcome == "OK" and m.model.entry_filled_lots == 80 and m.model.exited_lots == 0
    step = m.cancelled(order=1)
    assert step.dest == "EXIT_SENT"
    assert step.emitted[0][1]["qty_lots"] == 80     # the exit covers the late fill too


def test_duplicated_and_reordered_cumulative_frames_book_once() -> None:
    """D14: cumulative frames repeated or arriving out of order never book twice."""
    m = SlotMachine()
    enter(m, side=Side.LONG, lots=10)
    assert fill(m, 1, 4, "4") == "OK"
    assert fill(m, 1, 4, "4") == "DUPLICATE_EVENT"
    assert fill(m, 1, 7, "7") == "OK"
    assert fill(m, 1, 4, "4") == "DUPLICATE_EVENT"   # an older frame after a newer one
    assert m.model.entry_filled_lots == 7 and m.model.entry_cost_usdt == D(7)


def test_foreign_fills_never_change_the_slot() -> None:
    """D7: a fill of an order the slot did not send is refused, whatever the state."""
    m = SlotMachine()
    enter(m)
    before = m.vars()
    assert fill(m, 99, 5, "5") == "FOREIGN_ORDER"
    assert fill(m, 0, 5, "5") == "FOREIGN_ORDER"
    assert m.vars() == before and m.state == "ENTRY_SUBMITTED"


@pytest.mark.parametrize(("kwargs", "outcome"), [
    ({"venue_lots": 5}, "VENUE_NOT_FLAT"),            # D15: the venue shows a position
    ({"probe_ok": False}, "VENUE_NOT_FLAT"),          # D8: probe error = no entry
    ({"fill_age_ms": 4999}, "VENUE_NOT_FLAT"),        # D8: own fill inside the 5 s hot window
    ({"px": "0.000000001"}, "INVALID_INTENT"),        # D15: price below the sane floor
    ({"leverage": 0}, "INVALID_INTENT"),              # D10: leverage out of [1, venue max]
    ({"leverage": 126}, "INVALID_INTENT"),
    ({"lots": 0}, "INVALID_INTENT"),
    ({"side": Side.NONE}, "INVALID_INTENT"),
    ({"legs": 2, "ratio_0": "1"}, "INVALID_INTENT"),  # a first leg that closes everything is not a leg
])
def test_unsafe_entries_are_refused_and_change_nothing(kwargs: dict[str, object], outcome: str) -> None:
    m = SlotMachine()
    before = m.vars()
    assert enter(m, **kwargs) == outcome  # type: ignore[arg-type]
    assert m.state == "IDLE" and m.vars() == before


def test_second_entry_while_a_trade_is_live_is_refused() -> None:
    """D15: single slot."""
    m = SlotMachine()
    enter(m)
    fill(m, 1, 100, "100")
    assert enter(m, order=3) == "SLOT_BUSY"
    assert m.model.entry_order == 1


def test_exit_is_sized_from_the_slot_and_capped() -> None:
    """D15: a too-large exit closes what is open; size 0 (malformed) closes the active leg."""
    m = SlotMachine()
    enter(m, side=Side.LONG, lots=100, legs=2, ratio_0="0.5")
    fill(m, 1, 100, "100")
    step = m.exit(order=2, qty_lots=0)
    assert step.emitted[0][1]["qty_lots"] == 50      # leg 0 = half
    fill(m, 2, 50, "55")
    assert m.state == "PARTIALLY_CLOSED" and m.model.active_leg == 1
    step = m.exit(order=3, qty_lots=10_000)
    assert step.emitted[0][1]["qty_lots"] == 50      # capped at the open lots


def test_a_retried_exit_leg_is_not_oversized() -> None:
    m = SlotMachine()
    enter(m, side=Side.LONG, lots=100, legs=2, ratio_0="0.5")
    fill(m, 1, 100, "100")
    m.exit(order=2, qty_lots=0)
    fill(m, 2, 20, "22")
    m.cancel(order=2)
    assert m.cancelled(order=2).dest == "PARTIALLY_CLOSED"
    step = m.exit(order=3, qty_lots=0)
    assert step.emitted[0][1]["qty_lots"] == 30      # the rest of leg 0, not another 50


def test_late_fill_of_a_replaced_exit_order_books_as_exit() -> None:
    """D3 + D14 (verify finding 4): a maker exit times out and is cancelled, its cancel confirmation arrives, the
    MARKET exit goes out, and only then the maker exit's last fill is reported: it books as exit lots of the
    trade (the venue executed them), closes it, and the MARKET exit (reduce-only) can only end unfilled."""
    m = SlotMachine()
    enter(m, side=Side.SHORT, lots=100, px="1")
    fill(m, 1, 100, "100", "0.05")                  # short 100 @ 1.00, taker fee 0.05
    m.exit(order=2, qty_lots=0)                     # exit A: the maker order
    m.ack(order=2)
    assert fill(m, 2, 40, "36", "0.0072") == "OK"   # 40 @ 0.90, maker fee
    m.cancel(order=2)                               # its TTL expired
    assert m.cancelled(order=2).dest == "PARTIALLY_CLOSED"
    step = m.exit(order=3, qty_lots=0)              # exit B: the MARKET escalation, for the 60 the slot sees open
    assert step.emitted[0][1]["qty_lots"] == 60 and m.model.prev_exit_order == 2
    step = m.fill(order=2, cum_lots=100, cum_quote_usdt=D("90"), cum_fee_usdt=D("0.018"))  # A's last 60 @ 0.90
    assert step.outcome == "OK" and step.dest == "CLOSED"
    assert m.model.exited_lots == 100 and m.model.exit_cost_usdt == D("90")
    assert m.model.realised_pnl_usdt == D("10")     # short: 100 x (1.00 - 0.90)
    assert m.model.fees_usdt == D("0.068")          # 0.05 entry + 0.018 for all of A, once
    assert step.emitted == (("TRADE_CLOSED", {"trade_seq": 1, "realised_pnl_usdt": D("10"),
                                              "fees_usdt": D("0.068")}),)
    assert fill(m, 2, 100, "90", "0.018") == "DUPLICATE_EVENT"
    assert fill(m, 2, 40, "36", "0.0072") == "DUPLICATE_EVENT"
    assert m.cancelled(order=3).dest == "CLOSED"   # B: cancelled unfilled by the venue, nothing left to reduce
    assert m.model.exited_lots == 100 and m.model.fees_usdt == D("0.068")


def test_late_partial_fill_of_a_replaced_exit_order_leaves_the_next_exit_the_rest() -> None:
    """The same with A's late report covering part of the rest: booked as exit, and B's fills close the trade."""
    m = SlotMachine()
    enter(m, side=Side.LONG, lots=100, px="1")
    fill(m, 1, 100, "100")
    m.exit(order=2, qty_lots=0)
    fill(m, 2, 40, "44")                            # 40 @ 1.10
    m.cancel(order=2)
    m.cancelled(order=2)
    m.exit(order=3, qty_lots=0)
    assert fill(m, 2, 70, "77") == "OK"             # A's late report: 30 more @ 1.10
    assert m.state == "EXIT_SENT" and m.model.exited_lots == 70
    assert fill(m, 2, 70, "77") == "DUPLICATE_EVENT"
    assert fill(m, 3, 30, "36") == "OK"             # B can only execute the 30 still open: 30 @ 1.20
    assert m.state == "CLOSED" and m.model.realised_pnl_usdt == D("13")  # 40 x 0.10 + 30 x 0.10 + 30 x 0.20


def test_a_rejected_exit_order_is_not_remembered() -> None:
    """Only an exit order that may still report lots is remembered: a rejected one executed nothing."""
    m = SlotMachine()
    enter(m, side=Side.LONG, lots=10)
    fill(m, 1, 10, "10")
    m.exit(order=2, qty_lots=0)
    assert m.reject(order=2).dest == "EXIT_REJECTED"
    m.exit(order=3, qty_lots=0)
    assert m.model.prev_exit_order == 0
    assert fill(m, 2, 5, "5") == "FOREIGN_ORDER"


def test_frozen_entries_still_allow_exits() -> None:
    """capital_consistency: a capital mismatch freezes entries, never exits."""
    m = SlotMachine()
    enter(m, side=Side.LONG)
    fill(m, 1, 100, "100")
    m.freeze_entries()
    assert m.exit(order=2, qty_lots=0).outcome == "OK"
    fill(m, 2, 100, "101")
    m.trade_written()
    assert enter(m, order=3) == "ENTRY_FROZEN"
    m.unfreeze_entries()
    assert enter(m, order=3) == "OK"


def test_entry_completing_instead_of_being_cancelled_sends_the_requested_exit() -> None:
    """no_stranded_exit: the entry remainder filled, so no cancel confirmation will ever come."""
    m = SlotMachine()
    enter(m, lots=100)
    fill(m, 1, 40, "40")
    m.exit(order=2, qty_lots=0)
    step = m.fill(order=1, cum_lots=100, cum_quote_usdt=D(100), cum_fee_usdt=D(0))
    assert step.dest == "EXIT_SENT" and step.emitted[0][1]["qty_lots"] == 100


@settings(max_examples=60, deadline=None)
@given(leverage=st.integers(1, 125), entry_px=st.integers(1, 10_000), exit_px=st.integers(1, 10_000),
       lots=st.integers(1, 10_000), side=st.sampled_from([Side.LONG, Side.SHORT]))
def test_realised_pnl_does_not_depend_on_leverage(leverage: int, entry_px: int, exit_px: int, lots: int,
                                                  side: Side) -> None:
    """D1: the same fills at any leverage book the same PnL, side x qty x price change."""
    m = SlotMachine()
    enter(m, side=side, lots=lots, leverage=leverage)
    entry_quote = D(lots) * D(entry_px) / 100
    exit_quote = D(lots) * D(exit_px) / 100
    fill(m, 1, lots, str(entry_quote))
    m.exit(order=2, qty_lots=0)
    fill(m, 2, lots, str(exit_quote))
    sign = 1 if side is Side.LONG else -1
    assert m.model.realised_pnl_usdt == sign * (exit_quote - entry_quote)


def test_snapshot_restore_continues_identically() -> None:
    a = SlotMachine()
    enter(a, side=Side.LONG)
    fill(a, 1, 60, "61")
    b = SlotMachine()
    b.restore(a.snapshot())
    for m in (a, b):
        fill(m, 1, 100, "101")
        m.exit(order=2, qty_lots=0)
    assert a.vars() == b.vars() and a.state == b.state


def test_bad_parameters_and_unhandled_events_are_explicit() -> None:
    m = SlotMachine()
    with pytest.raises(EventParamError, match="cum_quote_usdt' must be Decimal"):
        m.fire("FILL", order=1, cum_lots=1, cum_quote_usdt=1.5, cum_fee_usdt=D(0))
    with pytest.raises(EventParamError, match="missing"):
        m.fire("FILL", order=1)
    with pytest.raises(UnhandledEvent, match="TRADE_WRITTEN is not handled in state IDLE"):
        m.trade_written()
    assert m.state == "IDLE"


def test_a_broken_invariant_stops_the_machine() -> None:
    """The generated machine asserts the spec's invariants after every step."""
    m = SlotMachine()
    enter(m, side=Side.LONG)
    fill(m, 1, 100, "100")
    m.model.realised_pnl_usdt = D("300")  # as if PnL had been multiplied by leverage (D1)
    with pytest.raises(InvariantViolation, match="pnl_is_price_change"):
        m.mark_price(px=D("1.1"))
