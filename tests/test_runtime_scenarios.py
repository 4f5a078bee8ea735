"""The runtime (Engine = kernel + exec router + policy) on a scripted venue and the virtual clock: one
deterministic scenario per router behaviour and per runtime defect row of DEFECTS.md (D8, D9, D15, D12).

Each test asserts venue-side truth (the orders the venue received, in order, with client ids, types, qty,
reduce_only) and the kernel's book (slot state, booked PnL and fees as exact Decimals, capital == the venue's
wallet where the venue is consistent). Times: quotes every second; a SHORT entry quotes post-only at the ask
(0.6092), an exit at the bid (0.6090); entry TTL 20 s, exit TTL 15 s (ExecConfig defaults).
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from runtime_helpers import (
    BTC,
    FET,
    WALLET,
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

from pink_fsm.generated.router import MissPolicy, Style
from pink_fsm.kernel import Side
from pink_fsm.ports import Action, Decision, OrderRequest, OrderType, PlaceResult, RejectCode, VenueOrder
from pink_fsm.runtime.app import recover_from
from pink_fsm.runtime.config import load_config
from pink_fsm.runtime.engine import Engine, NullAudit, VenueSnapshot
from pink_fsm.runtime.exec_router import ExecConfig, ProbeGate
from pink_fsm.runtime.sim_driver import SimDriver

ASK, BID = D("0.6092"), D("0.6090")
MAKER, TAKER = D("0.0002"), D("0.0005")
ENTRY, EXIT = client("0", 1), client("0", 2)  # the kernel's working orders of the first trade


def scenario(script: list[tuple[int, Decision]], exec_config: ExecConfig | None = None, end_ms: int = 120_000,
             audit: Any = None) -> tuple[ScriptedVenue, ScriptedPolicy, Engine]:
    venue = ScriptedVenue(quotes(FET, str(BID), str(ASK), 1_000, end_ms))
    policy = ScriptedPolicy(script)
    engine, _ = start(venue, policy, exec_config=exec_config, audit=audit)
    return venue, policy, engine


def shape(venue: ScriptedVenue) -> list[tuple[Any, ...]]:
    """The venue's log without prices and times: what was sent, in order."""
    out: list[tuple[Any, ...]] = []
    for e in venue.log:
        if isinstance(e, Placed):
            out.append(("place", e.client_id, e.order_type, e.side, e.qty, e.reduce_only, e.accepted))
        else:
            out.append(("cancel", e.client_id, e.found))
    return out


def place(cid: str, kind: str, side: str, qty: str, reduce_only: bool, accepted: bool = True) -> tuple[Any, ...]:
    return ("place", cid, kind, side, D(qty), reduce_only, accepted)


def assert_closed(engine: Engine, venue: ScriptedVenue, gross: D, fees: D, *, seq: int = 1) -> None:
    """The trade is booked once, exactly, and the kernel's capital is the venue's wallet to the last digit."""
    trade = engine.trades[seq]
    assert (trade.realised_pnl_usdt, trade.fees_usdt) == (gross, fees)
    assert venue.realised_usdt == gross and venue.fees_usdt == fees
    assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET + gross - fees
    assert engine.kernel.slot.state == "TRADE_TERMINAL_WRITTEN" and engine.kernel.flat
    assert engine.metrics.invariant_failures == 0 and not engine.kernel.halted


def open_lots(engine: Engine) -> int:
    m = engine.kernel.slot.model
    return m.entry_filled_lots - m.exited_lots


# ====================================================================== plans: maker and taker


def test_maker_plan_quotes_post_only_at_the_touch_and_books_exactly() -> None:
    """Post-only maker LIMIT entry and exit, each filled in full: maker fees, PnL at the fill prices."""
    venue, policy, engine = scenario([(2_000, enter()), (10_000, exit_())])
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    venue.at(12_000, lambda: venue.fill(client("0", 2, 1), "100", BID))
    run_until(venue, engine, 30_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            place(client("0", 2, 1), "LIMIT", "BUY", "100", True)]
    assert [(p.post_only, p.price_px) for p in venue.placed()] == [(True, ASK), (True, BID)]
    assert venue.leverage == {FET: 3}
    assert_closed(engine, venue, D(100) * (ASK - BID), D(100) * ASK * MAKER + D(100) * BID * MAKER)
    assert policy.closed == [(FET, D(100) * (ASK - BID) - D(100) * (ASK + BID) * MAKER)]


def test_taker_plan_sends_market_orders_and_books_taker_fees() -> None:
    """Taker plans: a MARKET entry (sell at the bid) and a MARKET exit (buy at the ask), taker fees."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())],
                                ExecConfig(entry_style=Style.TAKER, exit_style=Style.TAKER))
    run_until(venue, engine, 30_000)
    assert shape(venue) == [place(client("0", 1, 1), "MARKET", "SELL", "100", False),
                            place(client("0", 2, 1), "MARKET", "BUY", "100", True)]
    assert_closed(engine, venue, D(100) * (BID - ASK), D(100) * (BID + ASK) * TAKER)


# ====================================================================== entry TTL and the miss policy


@pytest.mark.parametrize("policy", [MissPolicy.SKIP, MissPolicy.RETRY, MissPolicy.MARKET])
def test_entry_ttl_cancels_first_then_the_miss_policy_decides(policy: MissPolicy) -> None:
    """Entry TTL: at plan + 20 s the quote is cancelled, then skip | re-quote (maker) | MARKET, the last two only
    behind the venue-truth gate (D8)."""
    venue, _, engine = scenario([(2_000, enter())], ExecConfig(entry_miss_policy=policy))
    second = client("0", 1, 2)
    venue.at(30_000, lambda: venue.fill(second, "100", ASK) if second in venue.orders
             and venue.orders[second].open else None)
    run_until(venue, engine, 40_000)
    expected = [place(client("0", 1, 1), "LIMIT", "SELL", "100", False), ("cancel", client("0", 1, 1), True)]
    assert [e.ts_ms for e in venue.log[:2]] == [2_000, 22_000]
    if policy is MissPolicy.SKIP:
        assert shape(venue) == expected
        assert engine.kernel.slot.state == "IDLE" and engine.slot_view().entries_allowed
        assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET
    else:
        kind = "LIMIT" if policy is MissPolicy.RETRY else "MARKET"
        assert shape(venue) == [*expected, place(second, kind, "SELL", "100", False)]
        assert venue.log[2].ts_ms == 22_000
        assert engine.kernel.slot.state == "POSITION_OPEN" and open_lots(engine) == 100
        px, rate = (ASK, MAKER) if policy is MissPolicy.RETRY else (BID, TAKER)
        assert engine.kernel.slot.model.entry_cost_usdt == D(100) * px
        assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET - D(100) * px * rate
    assert venue.max_abs_lots.get(FET, 0) <= 100


def test_entry_retry_is_bounded() -> None:
    """retry(n): at most n re-quotes, each after a TTL miss and the gate; then SKIPPED, flat, nothing booked."""
    venue, _, engine = scenario([(2_000, enter())], ExecConfig(entry_retries=2))
    run_until(venue, engine, 100_000)
    ids = [client("0", 1, n) for n in (1, 2, 3)]
    assert shape(venue) == [x for cid in ids for x in (place(cid, "LIMIT", "SELL", "100", False),
                                                        ("cancel", cid, True))]
    assert [e.ts_ms for e in venue.log] == [2_000, 22_000, 22_000, 42_000, 42_000, 62_000]
    assert engine.kernel.slot.state == "IDLE" and engine.trades == {}
    assert engine.metrics.router_transitions["SKIPPED"] == 1


# ====================================================================== exits


def test_exit_ttl_becomes_market_for_the_rest_with_the_same_trade() -> None:
    """An expired exit always becomes MARKET for what is left, under the same working order / trade."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())])
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    venue.at(12_000, lambda: venue.fill(client("0", 2, 1), "40", BID))
    run_until(venue, engine, 40_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            place(client("0", 2, 1), "LIMIT", "BUY", "100", True),
                            ("cancel", client("0", 2, 1), True),
                            place(client("0", 2, 2), "MARKET", "BUY", "60", True)]
    assert [e.ts_ms for e in venue.log[2:]] == [25_000, 25_000]  # exit planned at 10 s + 15 s TTL
    gross = D(40) * (ASK - BID)  # the MARKET rest buys at the ask: no gain on those 60
    fees = D(100) * ASK * MAKER + D(40) * BID * MAKER + D(60) * ASK * TAKER
    assert list(engine.trades) == [1]
    assert_closed(engine, venue, gross, fees)
    assert venue.position_qty() == 0


def test_urgent_exit_cancels_the_resting_maker_exit_before_the_market_order() -> None:
    """Urgent exit pre-empts a resting maker exit: cancel first, and only once the venue confirms, MARKET."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_()), (12_000, exit_(urgent=True))])
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    run_until(venue, engine, 30_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            place(client("0", 2, 1), "LIMIT", "BUY", "100", True),
                            ("cancel", client("0", 2, 1), True),
                            place(client("0", 2, 2), "MARKET", "BUY", "100", True)]
    assert [e.ts_ms for e in venue.log[2:]] == [12_000, 12_000]
    assert_closed(engine, venue, ZERO_GROSS, D(100) * ASK * MAKER + D(100) * ASK * TAKER)
    assert venue.max_abs_lots[FET] == 100


ZERO_GROSS = D(100) * (ASK - ASK)


# ====================================================================== post-only rejects


@pytest.mark.parametrize("rejected", [1, 2])
def test_post_only_reject_on_entry_resolves_at_once_through_the_miss_path(rejected: int) -> None:
    """A post-only reject of an entry counts as already expired: MISS at once -> gate -> bounded retry (1)."""
    venue, _, engine = scenario([(2_000, enter())])
    ids = [client("0", 1, n) for n in (1, 2)]
    venue.reject_post_only = set(ids[:rejected])
    venue.at(5_000, lambda: venue.fill(ids[1], "100", ASK) if ids[1] in venue.orders else None)
    run_until(venue, engine, 60_000)
    assert shape(venue) == [place(ids[0], "LIMIT", "SELL", "100", False, accepted=False),
                            place(ids[1], "LIMIT", "SELL", "100", False, accepted=rejected < 2)]
    assert [e.ts_ms for e in venue.log] == [2_000, 2_000]  # no TTL wait
    if rejected == 2:
        assert engine.kernel.slot.state == "IDLE" and engine.trades == {}
        assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET
    else:
        assert engine.kernel.slot.state == "POSITION_OPEN" and open_lots(engine) == 100


def test_post_only_reject_on_exit_becomes_market_at_once() -> None:
    """A post-only exit that would take resolves at once as a MARKET order, same trade (no_stranded_exit)."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())])
    venue.reject_post_only = {client("0", 2, 1)}
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    run_until(venue, engine, 30_000)
    assert shape(venue)[1:] == [place(client("0", 2, 1), "LIMIT", "BUY", "100", True, accepted=False),
                                place(client("0", 2, 2), "MARKET", "BUY", "100", True)]
    assert [e.ts_ms for e in venue.log[1:]] == [10_000, 10_000]
    assert_closed(engine, venue, ZERO_GROSS, D(100) * ASK * MAKER + D(100) * ASK * TAKER)


# ====================================================================== venue-side cancels


def test_venue_side_cancel_of_an_entry_sets_the_deadline_to_now() -> None:
    """A venue-side cancel pulls the deadline to now: the miss path (gate, re-quote) runs at once, not at TTL."""
    venue, _, engine = scenario([(2_000, enter())])
    venue.at(8_000, lambda: venue.venue_cancel(client("0", 1, 1)))
    run_until(venue, engine, 15_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            place(client("0", 1, 2), "LIMIT", "SELL", "100", False)]
    assert venue.log[1].ts_ms == 8_000
    assert engine.kernel.slot.state in ("ENTRY_SUBMITTED", "ENTRY_WORKING")


def test_venue_side_cancel_of_an_exit_escalates_to_market() -> None:
    """A venue-side cancel of a resting exit: MARKET for the rest at once, same trade (no_stranded_exit)."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())])
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    venue.at(13_000, lambda: venue.venue_cancel(client("0", 2, 1), "EXPIRED"))
    run_until(venue, engine, 30_000)
    assert shape(venue)[1:] == [place(client("0", 2, 1), "LIMIT", "BUY", "100", True),
                                place(client("0", 2, 2), "MARKET", "BUY", "100", True)]
    assert venue.log[2].ts_ms == 13_000
    assert_closed(engine, venue, ZERO_GROSS, D(100) * ASK * MAKER + D(100) * ASK * TAKER)


# ====================================================================== fills racing the TTL cancel


def test_fill_racing_the_ttl_cancel_is_reclassified_as_filled_without_requote() -> None:
    """On expiry the cancel goes first; the venue had filled the quote: FILLED, position open, no re-quote."""
    venue, _, engine = scenario([(2_000, enter())])
    venue.fill_on_cancel[client("0", 1, 1)] = ("100", str(ASK))
    run_until(venue, engine, 60_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            ("cancel", client("0", 1, 1), False)]
    assert engine.kernel.slot.state == "POSITION_OPEN" and open_lots(engine) == 100
    assert engine.router.working[ENTRY].final_state == "FILLED"
    assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET - D(100) * ASK * MAKER
    assert venue.max_abs_lots[FET] == 100


def test_partial_entry_then_ttl_is_partial_done_and_the_position_is_what_filled() -> None:
    """Entry part-filled, then TTL: cancel, PARTIAL_DONE, the slot holds the 40 lots, no re-quote; the exit is
    sized from the slot (D15: exits capped at the open qty)."""
    venue, _, engine = scenario([(2_000, enter()), (30_000, exit_())])
    venue.at(10_000, lambda: venue.fill(client("0", 1, 1), "40", ASK))
    venue.at(32_000, lambda: venue.fill(client("0", 2, 1), "40", BID))
    run_until(venue, engine, 25_000)
    assert engine.router.working[ENTRY].final_state == "PARTIAL_DONE"
    assert engine.kernel.slot.state == "POSITION_OPEN" and open_lots(engine) == 40
    run_until(venue, engine, 40_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            ("cancel", client("0", 1, 1), True),
                            place(client("0", 2, 1), "LIMIT", "BUY", "40", True)]
    assert_closed(engine, venue, D(40) * (ASK - BID), D(40) * (ASK + BID) * MAKER)


# ====================================================================== duplicates and malformed frames


def test_duplicate_frames_of_the_same_execution_are_booked_once() -> None:
    """The stream repeats the fill (order and account frames): the execution books once (D14 at runtime)."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())])

    def fill_twice(cid: str, px: D) -> None:
        venue.fill(cid, "100", px)
        venue.outbox.extend([dict(f) for f in venue.outbox])

    venue.at(5_000, lambda: fill_twice(client("0", 1, 1), ASK))
    venue.at(12_000, lambda: fill_twice(client("0", 2, 1), BID))
    run_until(venue, engine, 30_000)
    assert engine.kernel.counters["DUPLICATE_EVENT"] >= 2
    assert_closed(engine, venue, D(100) * (ASK - BID), D(100) * (ASK + BID) * MAKER)


def test_duplicate_decisions_send_one_order_per_working_order() -> None:
    """Duplicate suppression: ENTER while an entry works and EXIT while an exit works send nothing more."""
    venue, _, engine = scenario([(2_000, enter()), (3_000, enter()), (4_000, enter()), (10_000, exit_()),
                                 (11_000, exit_()), (12_000, exit_())])
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    venue.at(13_000, lambda: venue.fill(client("0", 2, 1), "100", BID))
    run_until(venue, engine, 30_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            place(client("0", 2, 1), "LIMIT", "BUY", "100", True)]
    assert engine.metrics.decisions["ENTER_NOT_ALLOWED"] == 2
    assert_closed(engine, venue, D(100) * (ASK - BID), D(100) * (ASK + BID) * MAKER)


def test_malformed_frames_are_counted_and_the_runtime_keeps_going() -> None:
    """A malformed frame (NaN quantity, not an object, no event time) is counted as BAD_FRAME, books nothing,
    and the trade goes on to book exactly."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())])
    bad: list[Any] = [
        {"e": "ORDER_TRADE_UPDATE", "E": 3_000, "o": {"s": "FET-USDT", "c": client("0", 1, 1), "i": "1",
                                                      "S": "SELL", "o": "LIMIT", "x": "TRADE", "X": "FILLED",
                                                      "z": "NaN", "ap": "0.6092"}},
        "not a frame",
        {"e": "ACCOUNT_UPDATE", "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "1"}]}},
    ]

    def inject_bad() -> None:
        for frame in bad:
            venue.inject(frame)

    venue.at(3_000, inject_bad)
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    venue.at(12_000, lambda: venue.fill(client("0", 2, 1), "100", BID))
    run_until(venue, engine, 30_000)
    assert engine.metrics.bad_frames == 3 and engine.kernel.counters["BAD_FRAME"] == 3
    assert_closed(engine, venue, D(100) * (ASK - BID), D(100) * (ASK + BID) * MAKER)


# ====================================================================== the audit log cannot be written (D12)


class FlakyAudit(NullAudit):
    """An audit sink whose commit raises while `failing`; `healthy` reports it once it is `noticed`."""

    def __init__(self) -> None:
        self.failing = False
        self.noticed = False
        self.commits = 0

    @property
    def healthy(self) -> bool:  # type: ignore[override]
        return not self.noticed

    def commit(self) -> None:
        if self.failing:
            raise OSError("disk full")
        self.commits += 1


def test_audit_unwritable_sends_no_entry_order() -> None:
    """D12: the commit fails at the turn that would send an entry: the entry is not sent (a refused placement),
    and while the audit is unhealthy the policy sees entries_allowed false."""
    audit = FlakyAudit()
    venue, policy, engine = scenario([(2_000, enter()), (6_000, enter())], audit=audit)

    def disk_full() -> None:
        audit.failing = True

    venue.at(1_500, disk_full)
    venue.at(3_000, lambda: setattr(audit, "noticed", True))
    run_until(venue, engine, 10_000)
    assert venue.placed() == []  # (set_leverage still reaches the venue: it opens no exposure)
    assert engine.metrics.audit_failures > 0
    assert engine.kernel.slot.state == "ORDER_REJECTED" and engine.kernel.flat
    assert all(not view.entries_allowed for ts, view in policy.seen if ts >= 3_000)
    assert engine.metrics.decisions["ENTER_NOT_ALLOWED"] == 1


def test_audit_unwritable_still_sends_exits_and_frees_the_slot_only_once_durable() -> None:
    """D12: exits are never blocked by the audit; the slot frees (TRADE_TERMINAL_WRITTEN) only after a commit."""
    audit = FlakyAudit()
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())], audit=audit)
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))

    def disk_full() -> None:
        audit.failing, audit.noticed = True, True

    venue.at(8_000, disk_full)
    venue.at(12_000, lambda: venue.fill(client("0", 2, 1), "100", BID))
    run_until(venue, engine, 15_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            place(client("0", 2, 1), "LIMIT", "BUY", "100", True)]
    assert engine.kernel.slot.state == "CLOSED"  # booked, but not yet durable: the slot is not free
    assert not engine.slot_view().entries_allowed
    audit.failing, audit.noticed = False, False
    run_until(venue, engine, 20_000)
    assert_closed(engine, venue, D(100) * (ASK - BID), D(100) * (ASK + BID) * MAKER)
    assert engine.slot_view().entries_allowed


# ====================================================================== D15: single slot


def test_d15_no_enter_while_the_venue_shows_any_position() -> None:
    """D15: a position on the account (here another symbol, opened by someone else) refuses the ENTER: nothing
    is sent. Once the venue is flat again the same entry goes out."""
    venue, _, engine = scenario([(2_000, enter()), (12_000, enter())])
    venue.at(1_500, lambda: venue.add_foreign_position(BTC, Side.LONG, "0.010", "60000"))
    venue.at(10_000, venue.foreign_positions.clear)
    run_until(venue, engine, 11_000)
    assert venue.placed() == [] and venue.leverage == {}
    assert engine.kernel.counters["VENUE_NOT_FLAT"] == 1 and engine.kernel.slot.state == "IDLE"
    run_until(venue, engine, 13_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False)]


def test_d15_no_enter_while_a_foreign_order_rests_at_the_venue() -> None:
    """D15 / D9: an order we do not work rests at the venue (it could fill any moment): not provably flat."""
    venue, _, engine = scenario([(2_000, enter())])
    other = VenueOrder("manual_1", "42", FET, "BUY", OrderType.LIMIT, D(10), D(0), D("0.5"), False)
    real = venue.open_orders
    venue.open_orders = lambda: [*real(), other]  # type: ignore[method-assign]
    run_until(venue, engine, 5_000)
    assert venue.placed() == []
    assert engine.kernel.counters["VENUE_NOT_FLAT"] == 1


@pytest.mark.parametrize("qty", ["NaN", "0", "-5", "0.5"])
def test_d15_non_finite_or_sub_lot_size_rejects_the_enter(qty: str) -> None:
    """D15: non-finite / non-positive / sub-lot sizing never reaches the venue."""
    venue, _, engine = scenario([(2_000, Decision(Action.ENTER, FET, Side.SHORT, D(qty), D(3)))])
    run_until(venue, engine, 5_000)
    assert venue.placed() == []
    assert engine.kernel.counters["INVALID_INTENT"] == 1 and engine.kernel.slot.state == "IDLE"


# ====================================================================== D8: requote only when the venue is flat


def gate_inputs(engine: Engine) -> list[dict[str, Any]]:
    """Record what the router's requote gate was told (the production call, unchanged)."""
    seen: list[dict[str, Any]] = []
    real = engine.router.gate

    def spy(working_id: str, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(working_id, **kwargs)

    engine.router.gate = spy  # type: ignore[method-assign]
    return seen


def test_d8_requote_blocked_when_the_entry_had_in_fact_filled_and_rest_shows_the_position() -> None:
    """D8: at TTL the stream reports our cancel first (nothing filled) and the fill only later, but the venue
    holds the position: the gate sees the live venue position and skips; the late fill books the one entry."""
    venue, _, engine = scenario([(2_000, enter()), (40_000, exit_())])
    seen = gate_inputs(engine)
    venue.cancel_reported_before_fill[client("0", 1, 1)] = ("100", str(ASK))
    venue.at(21_500, lambda: setattr(venue, "hold_frames", True))
    venue.at(25_000, venue.release)
    venue.at(42_000, lambda: venue.fill(client("0", 2, 1), "100", BID))
    run_until(venue, engine, 60_000)
    assert seen == [{"probe_ok": True, "venue_position_lots": 100, "own_fill_age_ms": 10**12, "slot_open_lots": 0,
                     "now_ms": 22_000}]
    assert engine.router.working[ENTRY].final_state == "SKIPPED"
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            ("cancel", client("0", 1, 1), True),
                            place(client("0", 2, 1), "LIMIT", "BUY", "100", True)]
    assert venue.max_abs_lots[FET] == 100
    assert_closed(engine, venue, D(100) * (ASK - BID), D(100) * (ASK + BID) * MAKER)


def test_d8_requote_blocked_by_an_own_fill_in_the_hot_window_while_rest_lags() -> None:
    """D8: the stream shows the fill right after the cancel report, REST positions still show flat: the own fill
    inside the 5 s hot window (and the slot's open lots) block the re-quote."""
    venue, _, engine = scenario([(2_000, enter())])
    seen = gate_inputs(engine)
    venue.cancel_reported_before_fill[client("0", 1, 1)] = ("100", str(ASK))
    venue.positions_lag = True
    run_until(venue, engine, 40_000)
    assert len(seen) == 1 and seen[0]["probe_ok"] and seen[0]["venue_position_lots"] == 0
    assert seen[0]["own_fill_age_ms"] < 5_000
    assert engine.router.working[ENTRY].final_state == "SKIPPED"
    assert [p.client_id for p in venue.placed()] == [client("0", 1, 1)]
    assert engine.kernel.slot.state == "POSITION_OPEN" and open_lots(engine) == 100
    assert venue.max_abs_lots[FET] == 100


def test_d8_requote_blocked_by_a_live_venue_position_on_another_symbol() -> None:
    """D8 + D15: a live position anywhere on the account blocks the re-quote after a miss (gate only)."""
    venue, _, engine = scenario([(2_000, enter())])
    seen = gate_inputs(engine)
    venue.at(15_000, lambda: venue.add_foreign_position(BTC, Side.SHORT, "0.002", "60000"))
    run_until(venue, engine, 40_000)
    assert seen == [{"probe_ok": True, "venue_position_lots": 2, "own_fill_age_ms": 10**12, "slot_open_lots": 0,
                     "now_ms": 22_000}]
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            ("cancel", client("0", 1, 1), True)]
    assert engine.router.working[ENTRY].final_state == "SKIPPED" and engine.kernel.slot.state == "IDLE"


def test_d8_probe_error_skips_the_requote_engine_level() -> None:
    """D8: a probe that failed (VenueSnapshot ok=False) is never 'flat': the miss is skipped, nothing re-sent.
    Driven by calling the Engine directly, as the asyncio shell does."""
    venue, _, engine = scenario([(2_000, enter())])
    driver = SimDriver(venue, engine)
    run_until(venue, engine, 21_000)
    engine.on_timer(22_000)
    actions = engine.take_actions()
    assert len(actions) == 1
    for action in actions:
        driver._do(action)  # the cancel
    venue_frames = venue.drain_frames()
    for frame in venue_frames:
        engine.on_frame(frame)
    gates = [a for a in engine.take_actions() if isinstance(a, ProbeGate)]
    assert len(gates) == 1
    engine.on_gate_probe(gates[0], VenueSnapshot(False, error="HTTP 503"))
    assert engine.take_actions() == []
    assert engine.router.working[ENTRY].final_state == "SKIPPED"
    assert [p.client_id for p in venue.placed()] == [client("0", 1, 1)]


def test_d8_probe_error_at_the_requote_gate_skips_through_the_driver() -> None:
    """D8 through SimDriver: the gate's venue read raises VenueError -> probe error -> skip, run goes on."""
    venue, _, engine = scenario([(2_000, enter())])
    venue.at(21_000, lambda: setattr(venue, "fail_reads", 1))
    run_until(venue, engine, 40_000)
    assert engine.router.working[ENTRY].final_state == "SKIPPED"
    assert [p.client_id for p in venue.placed()] == [client("0", 1, 1)]


def test_d8_probe_error_refuses_the_enter_through_the_driver() -> None:
    """D8/D15 through SimDriver: the entry probe read raises VenueError -> ENTER refused, nothing sent."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, enter())])
    venue.at(1_500, lambda: setattr(venue, "fail_reads", 1))
    run_until(venue, engine, 12_000)
    assert engine.kernel.counters["VENUE_NOT_FLAT"] == 1
    assert [p.client_id for p in venue.placed()] == [client("0", 1, 1)]


# ====================================================================== D9: open orders before positions


def test_d9_every_venue_read_takes_open_orders_before_positions(tmp_path: Any) -> None:
    """D9: recovery (the app's `recover_from`, and the test composition) and every probe read open orders
    first, then positions, then (recovery only) the wallet."""
    venue = ScriptedVenue(quotes(FET, str(BID), str(ASK), 1_000, 30_000))
    config = load_config(None, {"run_dir": str(tmp_path)}, environ={})
    recover_from(venue, config, venue.contracts(), None)
    assert venue.reads == ["open_orders", "positions", "balance"]
    venue.reads.clear()
    engine, _ = start(venue, ScriptedPolicy([(2_000, enter())]))
    venue.at(21_000, venue.reads.clear)
    run_until(venue, engine, 30_000)
    assert venue.reads == ["open_orders", "positions"]  # the requote gate's probe at 22 s


def test_d9_fill_between_the_two_recovery_reads_is_adopted_not_reentered() -> None:
    """D9: the resting entry fills between the open-orders read and the positions read. Read in this order the
    order is seen open AND the position is seen: the position is adopted, the order's cancel fails harmlessly,
    the repeated fill frame is not booked again, and no second entry is ever sent."""
    venue = ScriptedVenue(quotes(FET, str(BID), str(ASK), 1_000, 60_000))
    engine, _ = start(venue, ScriptedPolicy([(2_000, enter())]))
    run_until(venue, engine, 5_000)
    assert engine.kernel.slot.state == "ENTRY_WORKING"
    venue.on_read["open_orders"] = lambda: venue.fill(client("0", 1, 1), "100", ASK)
    policy2 = ScriptedPolicy([(10_000, enter()), (20_000, exit_())])
    engine2, recovery = restart(venue, policy2, session="1")
    assert recovery.adopted == f"SHORT 100 FET-USDT @ {ASK}"
    assert engine2.kernel.slot.state == "POSITION_OPEN" and open_lots(engine2) == 100
    venue.at(22_000, lambda: venue.fill(client("1", 2, 1), "100", BID))
    run_until(venue, engine2, 40_000)
    assert [p.client_id for p in venue.placed()] == [client("0", 1, 1), client("1", 2, 1)]
    assert venue.max_abs_lots[FET] == 100
    assert policy2.returned[0][1].action is Action.ENTER and engine2.metrics.decisions["ENTER_NOT_ALLOWED"] == 1
    # The adopted trade books only what happened after recovery: the exit leg.
    trade = engine2.trades[1]
    assert trade.realised_pnl_usdt == D(100) * (ASK - BID) and trade.fees_usdt == D(100) * BID * MAKER
    assert engine2.kernel.capital_usdt == venue.wallet_usdt == WALLET + D(100) * (ASK - BID) - D(100) * (
        ASK + BID) * MAKER


# ====================================================================== late refusals (found by the BingX e2e)


def test_a_requote_refused_for_margin_ends_the_entry_instead_of_stranding_the_slot() -> None:
    """The first quote was acknowledged (the slot saw the entry live); the gated re-quote is refused by the
    REST call (insufficient margin). The slot takes refusals only before an ack, so the working order's end
    reaches it as a cancel: flat again, entries allowed, nothing booked (before the fix: ENTRY_WORKING for ever)."""
    venue, _, engine = scenario([(2_000, enter())], ExecConfig(entry_retries=1))
    second = client("0", 1, 2)
    original = venue.place_order

    def refuse_second(request: OrderRequest) -> PlaceResult:
        if request.client_id == second:
            venue.log.append(Placed(second, "LIMIT", request.side, request.qty, request.reduce_only, True,
                                    request.price_px, False, venue.now_ms))
            return PlaceResult(None, RejectCode.INSUFFICIENT_MARGIN, "margin is not enough")
        return original(request)

    venue.place_order = refuse_second  # type: ignore[method-assign]
    run_until(venue, engine, 40_000)
    assert [p.client_id for p in venue.placed()] == [client("0", 1, 1), second]
    assert engine.kernel.slot.state == "IDLE" and engine.slot_view().entries_allowed
    assert engine.kernel.capital_usdt == venue.wallet_usdt == WALLET


def test_an_exit_whose_market_attempts_run_out_is_sent_again() -> None:
    """no_stranded_exit: three MARKET attempts of an exit expire unfilled (an empty book); the router gives up
    on that working order, the slot keeps the position, and the engine sends the exit again after 5 s."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())],
                                ExecConfig(entry_style=Style.TAKER, exit_style=Style.TAKER))
    venue.market_fill_qty = lambda r: r.qty if not r.reduce_only or engine.now_ms >= 20_000 else D(0)
    run_until(venue, engine, 40_000)
    exits = [p for p in venue.placed() if p.reduce_only]
    assert len(exits) >= 4, exits  # 3 attempts of the first exit order, then the re-issued exit
    assert engine.kernel.slot.model.exited_lots == 100 and venue.position_qty() == 0


def test_late_fill_of_a_replaced_exit_working_order_is_booked() -> None:
    """D3 + D14 (verify finding 4 at runtime): the maker exit's TTL cancel is confirmed as if nothing more had
    filled, while the venue had filled its last 60 and the stream holds that report back. The router sends
    MARKET for the rest (refused: reduce-only, the venue is flat), the working order ends, the engine sends the
    exit again (a new working order, refused too); then the late fill of the first working order arrives. The
    slot remembers the exit order it replaced, so the fill books as exit lots of the trade and closes it."""
    venue, _, engine = scenario([(2_000, enter()), (10_000, exit_())])
    venue.at(5_000, lambda: venue.fill(client("0", 1, 1), "100", ASK))
    venue.at(12_000, lambda: venue.fill(client("0", 2, 1), "40", BID))

    def lagging_stream() -> None:
        venue.hold_frames = True
        venue.cancel_reported_before_fill[client("0", 2, 1)] = ("60", str(BID))

    venue.at(24_500, lagging_stream)
    venue.at(40_000, venue.release)
    run_until(venue, engine, 39_000)
    assert shape(venue) == [place(client("0", 1, 1), "LIMIT", "SELL", "100", False),
                            place(client("0", 2, 1), "LIMIT", "BUY", "100", True),
                            ("cancel", client("0", 2, 1), True),
                            place(client("0", 2, 2), "MARKET", "BUY", "60", True, accepted=False),
                            place(client("0", 3, 1), "LIMIT", "BUY", "60", True, accepted=False),
                            place(client("0", 4, 1), "LIMIT", "BUY", "60", True, accepted=False)]
    slot = engine.kernel.slot
    assert slot.state == "EXIT_REJECTED" and venue.position_qty() == 0
    assert (slot.model.exited_lots, slot.model.prev_exit_filled_lots) == (40, 40)
    run_until(venue, engine, 60_000)
    assert slot.model.exited_lots == 100 and engine.kernel.counters["FOREIGN_ORDER"] == 0
    assert list(engine.trades) == [1]
    assert_closed(engine, venue, D(100) * (ASK - BID), D(100) * (ASK + BID) * MAKER)
