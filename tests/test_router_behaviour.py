"""The generated router machine: TTLs, the one miss path, exit escalation, the requote gate (D8)."""

from __future__ import annotations

from pink_fsm.generated.router import MissPolicy, Role, RouterMachine, Style

TTL_MS = 58_000


def plan(role: Role, style: Style = Style.MAKER, policy: MissPolicy = MissPolicy.RETRY, retries: int = 1,
         lots: int = 10) -> RouterMachine:
    r = RouterMachine()
    step = r.plan(plan_role=role, plan_style=style, plan_miss_policy=policy, retries=retries, qty_lots=lots,
                  plan_ttl_ms=TTL_MS, clock_ms=1_000)
    assert step.outcome == "OK"
    return r


def gate(r: RouterMachine, *, probe_ok: bool = True, venue_lots: int = 0, age_ms: int = 60_000,
         slot_lots: int = 0) -> str:
    step = r.gate(probe_ok=probe_ok, venue_position_lots=venue_lots, own_fill_age_ms=age_ms,
                  slot_open_lots=slot_lots)
    return step.dest + ("/" + step.outcome if step.outcome != "OK" else "")


def test_exit_ttl_expiry_always_becomes_market_for_the_rest() -> None:
    r = plan(Role.EXIT)
    r.ack()
    r.fill(cum_lots=4)
    assert r.tick(clock_ms=1_000 + TTL_MS - 1).dest == "MAKER_RESTING"
    step = r.tick(clock_ms=1_000 + TTL_MS)
    assert step.dest == "CANCELLING" and step.emitted == (("CANCEL_WORKING", {}),)
    step = r.cancelled()
    assert step.dest == "TAKER_SENT" and step.emitted == (("SEND_MARKET", {"qty_lots": 6}),)


def test_fill_racing_the_cancel_completes_the_order() -> None:
    r = plan(Role.ENTRY)
    r.ack()
    r.tick(clock_ms=10**6)
    assert r.fill(cum_lots=10).dest == "FILLED"


def test_post_only_reject_resolves_at_once_through_the_miss_path() -> None:
    r = plan(Role.ENTRY)
    step = r.reject(post_only_would_take=True)
    assert step.dest == "MISS" and step.emitted == (("PROBE_VENUE", {}),)
    r = plan(Role.EXIT)
    step = r.reject(post_only_would_take=True)
    assert step.dest == "TAKER_SENT" and step.emitted == (("SEND_MARKET", {"qty_lots": 10}),)


def test_venue_side_cancel_pulls_the_deadline_to_now() -> None:
    r = plan(Role.EXIT)
    r.ack()
    r.tick(clock_ms=5_000)
    r.cancelled()
    assert r.model.deadline_ms == 5_000
    step = r.tick(clock_ms=5_001)     # long before the TTL
    assert step.dest == "TAKER_SENT"


def test_requote_only_when_venue_truth_says_flat() -> None:
    """D8: a missed entry re-quotes only with the probe answered, no position, no own fill in the hot window."""
    for blocked in ({"probe_ok": False}, {"venue_lots": 3}, {"age_ms": 4_999}, {"slot_lots": 1}):
        r = plan(Role.ENTRY)
        r.reject(post_only_would_take=True)
        assert gate(r, **blocked) == "SKIPPED/REQUOTE_BLOCKED", blocked  # type: ignore[arg-type]
    r = plan(Role.ENTRY)
    r.reject(post_only_would_take=True)
    assert gate(r) == "MAKER_SENT"
    assert r.model.gate_ok and r.model.attempt == 2


def test_retries_are_bounded() -> None:
    r = plan(Role.ENTRY, retries=1)
    r.reject(post_only_would_take=True)
    assert gate(r) == "MAKER_SENT"
    r.reject(post_only_would_take=True)
    assert gate(r) == "SKIPPED"


def test_market_miss_policy_goes_through_the_same_gate() -> None:
    r = plan(Role.ENTRY, policy=MissPolicy.MARKET)
    r.reject(post_only_would_take=True)
    assert gate(r, venue_lots=1) == "SKIPPED/REQUOTE_BLOCKED"
    r = plan(Role.ENTRY, policy=MissPolicy.MARKET)
    r.reject(post_only_would_take=True)
    assert gate(r) == "TAKER_SENT"


def test_urgent_exit_pre_empts_a_resting_maker_exit() -> None:
    r = plan(Role.EXIT)
    r.ack()
    step = r.urgent_exit()
    assert step.dest == "CANCELLING" and step.emitted == (("CANCEL_WORKING", {}),)
    assert r.cancelled().emitted == (("SEND_MARKET", {"qty_lots": 10}),)


def test_urgent_exit_does_nothing_to_an_entry() -> None:
    r = plan(Role.ENTRY)
    assert r.urgent_exit().outcome == "NOT_APPLICABLE" and r.state == "MAKER_SENT"


def test_market_exit_remainder_is_resent_then_gives_up_bounded() -> None:
    r = plan(Role.EXIT, style=Style.TAKER)
    r.fill(cum_lots=3)
    assert r.cancelled().emitted == (("SEND_MARKET", {"qty_lots": 7}),)
    r.cancelled()
    assert r.cancelled().dest == "REJECTED"   # max_market_attempts reached: the slot's EXIT_REJECTED path


def test_withdraw_cancels_the_attempt_and_never_requotes() -> None:
    """The slot's own cancel (policy cancel, exit while the entry works) ends the order: no miss path, no MARKET."""
    for role in (Role.ENTRY, Role.EXIT):
        r = plan(role)
        r.ack()
        step = r.withdraw()
        assert step.dest == "WITHDRAWING" and step.emitted == (("CANCEL_WORKING", {}),)
        assert r.tick(clock_ms=10**7).dest == "WITHDRAWING"  # the TTL no longer applies
        step = r.cancelled()
        assert step.dest == "WITHDRAWN" and step.emitted == ()


def test_fill_racing_a_withdrawal_is_counted() -> None:
    r = plan(Role.ENTRY, style=Style.TAKER)
    r.withdraw()
    assert r.fill(cum_lots=3).dest == "WITHDRAWING" and r.model.filled_lots == 3
    assert r.fill(cum_lots=10).dest == "FILLED"


def test_withdraw_during_our_ttl_cancel_and_in_miss() -> None:
    r = plan(Role.EXIT)
    r.tick(clock_ms=10**7)
    assert r.state == "CANCELLING"
    step = r.withdraw()
    assert step.dest == "WITHDRAWING" and step.emitted == ()  # our cancel is already in flight
    assert r.cancelled().dest == "WITHDRAWN"  # not escalated to MARKET: the slot asked for the end
    r = plan(Role.ENTRY)
    r.reject(post_only_would_take=True)
    assert r.withdraw().dest == "WITHDRAWN"
    assert plan(Role.ENTRY).withdraw().dest == "WITHDRAWING"
    idle = RouterMachine()
    assert idle.withdraw().outcome == "NOT_APPLICABLE"  # nothing is working yet


# ------------------------------------------------------------------ found by pink-codegen verify (slot x router)
# Each of these stranded an exit in the composed model: the router waited for a venue report that never comes.


def test_withdrawing_a_quote_the_venue_already_cancelled_ends_it_at_once() -> None:
    """The venue cancelled the quote; before the next sweep re-classifies it, the slot withdraws the order (its
    exit needs the entry cancelled first). Nothing is left to cancel, so no confirmation will follow."""
    r = plan(Role.ENTRY, lots=2)
    r.ack()
    r.fill(cum_lots=1)
    r.cancelled()  # venue-side
    step = r.withdraw()
    assert step.dest == "WITHDRAWN" and step.emitted == ()


def test_a_placement_refusal_after_our_ttl_cancel_ends_the_attempt_like_its_confirmation() -> None:
    """The TTL sweep asked to cancel a quote whose placement the venue then refused: the order never existed,
    no cancel confirmation will come; the refusal re-classifies it (exit -> MARKET, entry -> miss path)."""
    r = plan(Role.EXIT)
    r.tick(clock_ms=1_000 + TTL_MS)
    assert r.state == "CANCELLING"
    step = r.reject(post_only_would_take=False)
    assert step.dest == "TAKER_SENT" and step.emitted == (("SEND_MARKET", {"qty_lots": 10}),)
    r = plan(Role.ENTRY)
    r.tick(clock_ms=1_000 + TTL_MS)
    step = r.reject(post_only_would_take=False)
    assert step.dest == "MISS" and step.emitted == (("PROBE_VENUE", {}),)


def test_urgent_exit_after_a_venue_side_cancel_goes_market_at_once() -> None:
    """The venue cancelled the resting exit; an urgent exit before the next sweep has nothing to pre-empt and
    must not wait for a cancel confirmation that never comes."""
    r = plan(Role.EXIT)
    r.ack()
    r.fill(cum_lots=3)
    r.cancelled()  # venue-side
    step = r.urgent_exit()
    assert step.dest == "TAKER_SENT" and step.emitted == (("SEND_MARKET", {"qty_lots": 7}),)
