"""The checker's venue environment is spec/venue.yaml (issue 5): every venue action of the composed model is a
step of the order's venue machine, run by the exact interpreter.

Evidence: the reference search on smoke and default runs with the check inside `ComposedModel.apply` (the venue
machine lands where the model's order does, else `VenueSpecMismatch`) and reports the venue.yaml rows it fired;
a venue.yaml without MATCH from NEW (no fill before the acknowledgement) makes the model offer fewer actions
(smoke's states stay: a fill before the ack ends where ack-then-fill does); a venue.yaml that cannot refuse a
placement makes it offer no REJECT; a venue.yaml whose ACK lands elsewhere than the model's order stops the
search loudly; the venue rows never fired on default are the expected ones, each explained below; and for every
order of up to four lots venue.yaml offers exactly what the former hand-written conditions did (the state space
the fast engine and the SPIN export reproduce is unchanged).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pink_codegen.cli import app
from pink_codegen.ir import Machine
from pink_codegen.loader import load_machine, load_machine_text
from pink_codegen.verify.checker import CheckResult, check
from pink_codegen.verify.fast import run_check
from pink_codegen.verify.model import PROFILES, ComposedModel, State, VenueOrder, VenueSpecMismatch

ROOT = Path(__file__).resolve().parents[1]
SLOT = load_machine(ROOT / "spec" / "slot.yaml", "spec/slot.yaml")
VENUE_TEXT = (ROOT / "spec" / "venue.yaml").read_text()
VENUE = load_machine(ROOT / "spec" / "venue.yaml", "spec/venue.yaml")
MATCH_ROWS = "  - from: [NEW, OPEN, PARTIALLY_FILLED]\n    event: MATCH\n"


def venue_variant(old: str, new: str, count: int) -> Machine:
    assert VENUE_TEXT.count(old) == count
    return load_machine_text(VENUE_TEXT.replace(old, new), "venue.yaml")


ACCEPTED = next(t.index for t in VENUE.transitions if t.event == "SUBMIT" and t.guard is None)


def row(event: str, source: str, guard_has: str = "") -> int:
    """The index of the venue.yaml row for `event` from `source` (as written) whose guard mentions guard_has."""
    found = [t.index for t in VENUE.transitions
             if t.event == event and t.source_text == source and guard_has in t.guard_text]
    assert len(found) == 1, (event, source, guard_has, found)
    return found[0]


def reachable(m: ComposedModel) -> tuple[set[State], int]:
    """The reachable states and the number of venue actions offered in them (no invariant checks)."""
    init = m.initial()
    seen, queue, venue_actions = {init}, deque([init]), 0
    while queue:
        s = queue.popleft()
        for a in m.actions(s):
            venue_actions += a.label.startswith("venue")
            nxt, outcome, _ = m.apply(s, a)
            if outcome != "UNHANDLED" and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen, venue_actions


@pytest.fixture(scope="module")
def default() -> CheckResult:
    return check(ComposedModel(SLOT, PROFILES["default"]))


# The venue.yaml rows the composed model never fires on `default`, and why.
NEVER_ON_DEFAULT = {
    # The model's REJECT carries no reason: the venue machine refuses the placement as INVALID (the one refusal
    # every order can meet). The other refusals need what the model never places: a post-only order (the slot
    # names no order type; the router, which chooses post-only, is not composed), a reduce-only exit larger than
    # the position (the slot caps every exit at the open qty, D15), an entry without margin.
    row("SUBMIT", "NONE", "crosses_book"): "refused POST_ONLY_WOULD_TAKE",
    row("SUBMIT", "NONE", "reduces_position"): "refused REDUCE_ONLY",
    row("SUBMIT", "NONE", "margin_ok"): "refused INSUFFICIENT_MARGIN",
    # The venue never expires an order in the model (the slot's EXPIRED event is never delivered).
    row("EXPIRE", "[NEW, OPEN, PARTIALLY_FILLED]"): "EXPIRE",
    # The no-op rows: the model only offers what the venue machine really does (a MATCH within the target of a
    # live order, a cancel carried out when requested, one ACK), and the slot never asks twice to cancel a live
    # order (a request for an order that is over reaches no row: a final state takes no event).
    row("MATCH", "*"): "MATCH not applicable",
    row("CANCEL_REQUEST", "*"): "CANCEL_REQUEST not applicable",
    row("CANCEL_DONE", "*"): "CANCEL_DONE not applicable",
    **{t.index: f"{t.event} not applicable" for t in VENUE.transitions
       if t.source_text == "*" and t.event in ("ACK", "VENUE_CANCEL", "EXPIRE")},
}


def test_default_fires_every_venue_row_the_model_needs_and_never_the_expected_others(default: CheckResult) -> None:
    assert default.complete and not default.violations
    assert default.venue_fired_rows is not None
    assert set(default.venue_dead_rows) == set(NEVER_ON_DEFAULT), {
        t.index: t.label for t in VENUE.transitions if t.index in set(default.venue_dead_rows) ^ set(NEVER_ON_DEFAULT)}
    assert default.venue_fired_rows == {t.index for t in VENUE.transitions} - set(NEVER_ON_DEFAULT)
    # Fired: the placement accepted and refused (INVALID), the ACK, a partial and a completing MATCH, the
    # cancel request, the requested cancel carried out, and the venue-side cancel.
    live = "[NEW, OPEN, PARTIALLY_FILLED]"
    assert {ACCEPTED, row("SUBMIT", "NONE", "valid"), row("ACK", "NEW"), row("MATCH", live, "<"),
            row("MATCH", live, "=="), row("CANCEL_REQUEST", live), row("CANCEL_DONE", live),
            row("VENUE_CANCEL", live)} <= default.venue_fired_rows
    assert default.venue_coverage == ("venue.yaml rows never fired within these bounds: "
                                      + ", ".join(map(str, sorted(NEVER_ON_DEFAULT))))


def test_smoke_venue_steps_are_venue_yaml_steps_and_the_fast_engine_leaves_venue_rows_untracked() -> None:
    m = ComposedModel(SLOT, PROFILES["smoke"])
    ref = check(m)  # every venue action went through VenueEnvironment.advance: none raised
    assert ref.complete and not ref.violations
    assert ref.venue_fired_rows is not None and {ACCEPTED, row("SUBMIT", "NONE", "valid")} <= ref.venue_fired_rows
    # One lot per order on smoke: no partial fill.
    assert row("MATCH", "[NEW, OPEN, PARTIALLY_FILLED]", "<") in ref.venue_dead_rows
    fast, engine, _ = run_check(ComposedModel(SLOT, PROFILES["smoke"]), "fast")
    assert engine == "fast" and fast.venue_fired_rows is None and fast.venue_coverage == ""


def test_every_offered_venue_action_is_a_real_step_of_the_orders_venue_machine() -> None:
    m = ComposedModel(SLOT, PROFILES["smoke"])
    states, _ = reachable(m)
    env = m.venue
    for s in states:
        for o in s.orders:
            may = env.offers(o)
            labels = {a.label for a in m.actions(s) if f"#{o.ref}" in a.label and a.label.startswith("venue ")}
            assert (f"venue ACK #{o.ref}" in labels) == may.ack
            assert may.ack == (o.venue_state == "NONE")  # an unanswered placement, answered by SUBMIT then ACK
            fills = {int(label.split("cum=")[1]) for label in labels if label.startswith(f"venue FILL #{o.ref} cum=")}
            assert fills == {cum for cum, _ in may.fills}
            assert (f"venue REJECT #{o.ref}" in labels) == (may.reject and s.rejects_left > 0)
            assert may.reject == (o.venue_state == "NONE")
            assert (f"venue CANCELLED #{o.ref}" in labels) == (may.cancel_done and o.cancel_requested)
            assert may.venue_cancel == o.live


def test_a_venue_without_fills_before_the_ack_makes_the_model_offer_fewer_fills() -> None:
    no_match_from_new = venue_variant(MATCH_ROWS, "  - from: [OPEN, PARTIALLY_FILLED]\n    event: MATCH\n", 2)
    full_model = ComposedModel(SLOT, PROFILES["smoke"])
    full, full_actions = reachable(full_model)
    m = ComposedModel(SLOT, PROFILES["smoke"], venue=no_match_from_new)
    fewer, fewer_actions = reachable(m)
    assert fewer_actions < full_actions and fewer <= full  # a fill before the ack converges with ack-then-fill
    for s in fewer:  # no fill of an order the venue has not acknowledged
        for o in s.orders:
            if o.venue_state == "NONE":
                assert not any(a.label.startswith(f"venue FILL #{o.ref} ") for a in m.actions(s))
    ours, theirs = check(m), check(full_model)
    assert ours.states == len(fewer) and ours.transitions < theirs.transitions
    assert not ours.violations


def test_a_venue_the_model_does_not_follow_stops_the_search() -> None:
    # The acknowledgement also marks a cancel as requested: the venue machine no longer goes where the model's
    # acknowledged order is (OPEN, no cancel requested).
    ack_requests_cancel = venue_variant("  - from: NEW\n    event: ACK\n    to: OPEN\n",
                                        "  - from: NEW\n    event: ACK\n    to: OPEN\n    effect:\n"
                                        "      cancel_requested: true\n", 1)
    with pytest.raises(VenueSpecMismatch, match="ACK"):
        check(ComposedModel(SLOT, PROFILES["smoke"], venue=ack_requests_cancel))
    # A venue that cannot refuse a placement: the model never offers REJECT.
    never_refuses = venue_variant("    guard: not valid or qty_lots <= 0 or (new_post_only and new_type == MARKET)\n",
                                  "    guard: qty_lots < 0\n", 1)
    m = ComposedModel(SLOT, PROFILES["smoke"], venue=never_refuses)
    states, _ = reachable(m)
    assert not any(a.event == "REJECT" for s in states for a in m.actions(s))


def test_venue_state_is_a_function_of_the_order() -> None:
    o = VenueOrder(1, "ENTRY", 1, 2)
    assert o.venue_state == "NONE"
    assert VenueOrder(1, "ENTRY", 1, 2, acked=True).venue_state == "OPEN"
    assert VenueOrder(1, "ENTRY", 1, 2, filled_lots=1, acked=True).venue_state == "PARTIALLY_FILLED"
    assert VenueOrder(1, "ENTRY", 1, 2, filled_lots=2, acked=True, live=False).venue_state == "FILLED"
    assert VenueOrder(1, "ENTRY", 1, 2, filled_lots=1, acked=True, live=False).venue_state == "CANCELLED"


def test_cli_verify_prints_the_venue_rows_never_fired_with_the_reference_engine() -> None:
    result = CliRunner().invoke(app, ["verify", "--profile", "smoke", "--engine", "reference",
                                      "--spec", str(ROOT / "spec")])
    assert result.exit_code == 0, result.output
    assert "venue.yaml rows never fired within these bounds: 1, 2, 3, 6, 8" in result.output


def test_venue_yaml_offers_what_the_hand_written_venue_did_for_every_order_up_to_four_lots() -> None:
    """The state space stays the one the fast engine and the SPIN export reproduce: for every order the profiles
    can hold (deep: 3 lots), venue.yaml allows exactly the venue actions the former hand-written conditions did."""
    env = ComposedModel(SLOT, PROFILES["smoke"]).venue
    for role in ("ENTRY", "EXIT"):
        for target in range(1, 5):
            for filled in range(target + 1):
                for acked in (False, True):
                    for live in (False, True):
                        for asked in (False, True):
                            if (filled and not acked) or (filled == target and live):
                                continue  # a fill marks the order acknowledged; a filled order is over
                            o = VenueOrder(1, role, 1, target, filled, acked=acked, live=live, cancel_requested=asked)
                            may = env.offers(o)
                            unanswered = live and not acked and filled == 0
                            assert (may.ack, may.reject) == (unanswered, unanswered), o
                            cums = sorted({filled + 1, target}) if live and filled < target else []
                            assert may.fills == tuple((cum, asked and cum < target) for cum in cums), o
                            assert (may.cancel_done, may.venue_cancel) == (live and asked, live), o
