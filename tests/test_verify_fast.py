"""The fast engine of `pink-codegen verify` (issue 5, performance) checks the same model as the reference checker.

Evidence, from the strongest: on the smoke profile the compiled transition relation equals the reference
model's state for state (every action, its label, the next state, the fired row, in the same order) and the
compiled invariants accept exactly the states the reference accepts; on the smoke, default, one-lot,
leverage (1, 3) and two-trade profiles both searches report the same states, transitions, depth, verdicts and
dead rows; spec mutants of tests/test_verify_mutants.py are killed by both with the same invariant, detail and
shortest trace, and the fast trace replays on the reference model to the same violation.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from typer.testing import CliRunner

from pink_codegen.cli import app
from pink_codegen.exact import BoundError
from pink_codegen.loader import load_machine, load_machine_text
from pink_codegen.verify.checker import CheckResult, check, composed_violations, replay
from pink_codegen.verify.fast import (
    FastModel,
    FastUnsupported,
    check_fast,
    pack_order,
    run_check,
    unsupported_bounds,
    why_unsupported,
)
from pink_codegen.verify.model import PROFILES, Bounds, ComposedModel
from pink_codegen.verify.mutants import BY_NAME as MUTANTS

SLOT_TEXT = (Path(__file__).resolve().parents[1] / "spec" / "slot.yaml").read_text()

ROOT = Path(__file__).resolve().parents[1]
SLOT = load_machine(ROOT / "spec" / "slot.yaml", "spec/slot.yaml")

VARIANTS = {
    "smoke": PROFILES["smoke"],
    "default_1_lot": attrs.evolve(PROFILES["default"], name="default-1-lot", max_lots=1),
    "leverage_1_3": attrs.evolve(PROFILES["default"], name="leverage-1-3", max_lots=1, leverages=(1, 3)),
    "two_trades": Bounds("two-trades", max_trades=2, max_lots=2, later_trade_max_lots=1, cancel_budget=1,
                         reject_budget=0, duplicate_budget=0, foreign_budget=0, venue_cancel_budget=1),
}


def same_search(fast: CheckResult, ref: CheckResult) -> None:
    assert (fast.states, fast.transitions, fast.max_depth, fast.complete) == \
        (ref.states, ref.transitions, ref.max_depth, ref.complete)
    assert fast.verdicts == ref.verdicts
    assert fast.dead_rows == ref.dead_rows and fast.fired_rows == ref.fired_rows
    assert fast.violations == ref.violations


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_engine_finds_the_reference_states_transitions_depth_verdicts_and_dead_rows(name: str) -> None:
    m = ComposedModel(SLOT, VARIANTS[name])
    same_search(check_fast(m), check(m))


@pytest.mark.slow
def test_fast_engine_matches_the_reference_on_the_default_profile() -> None:
    """About 40 s for the reference, 3 s for the fast engine: 236,234 states, 1,288,105 transitions."""
    m = ComposedModel(SLOT, PROFILES["default"])
    fast = check_fast(m)
    same_search(fast, check(m))
    assert (fast.states, fast.transitions, fast.max_depth) == (236_234, 1_288_105, 20)


def test_compiled_transition_relation_equals_the_reference_model_state_for_state() -> None:
    """Every state the fast engine reaches on smoke: the same actions in the same order, the same next states
    (mapped back to model.State), the same fired rows, and the invariants hold in the same states."""
    m = ComposedModel(SLOT, attrs.evolve(PROFILES["smoke"], foreign_budget=1))
    fm = FastModel(m)
    init = fm.initial()
    assert fm.to_state(init) == m.initial()
    seen = {init}
    queue = [init]
    for st in queue:
        s = fm.to_state(st)
        assert fm.holds(st) == (not m.exact.violated(s.slot_state, m.vars(s)) and not composed_violations(m, s))
        expected = []
        for action in m.actions(s):
            try:
                nxt, outcome, row = m.apply(s, action)
            except BoundError:
                expected.append((action.label, None, "BOUND"))
                continue
            if outcome != "UNHANDLED":
                expected.append((action.label, nxt, row))
        got = [(fm.label(lid), fm.to_state(n), row) for lid, n, row in fm.successors(st) if n is not None]
        assert got == expected, s
        assert all(tuple(pack_order(o) for o in fm.to_state(n).orders) == n[fm.n_prefix:] for _, n, _ in
                   fm.successors(st) if n is not None)
        for _, n, _ in fm.successors(st):
            if n is not None and n not in seen:
                seen.add(n)
                queue.append(n)
    assert len(seen) > 2_000


KILLED = ["pnl_times_leverage", "exit_booked_at_entry_vwap", "entry_vwap_over_target",
          "late_entry_fill_booked_as_exit", "carried_pnl_not_reanchored", "entry_lots_cumulative_as_incremental",
          "no_single_slot_check", "requested_exit_never_sent", "entry_reject_while_cancelling_waits",
          "exit_request_sends_no_entry_cancel", "enter_before_record_durable", "entry_fee_cumulative_as_incremental"]


@pytest.mark.parametrize("name", KILLED)
def test_fast_engine_kills_the_mutant_with_the_reference_invariant_and_shortest_trace(name: str) -> None:
    mutant = MUTANTS[name]
    m = ComposedModel(load_machine_text(mutant.apply(SLOT_TEXT), "slot.yaml"), mutant.bounds)
    fast, ref = check_fast(m), check(m)
    assert fast.violations and fast.violations[0].invariant in mutant.kills
    same_search(fast, ref)  # the same invariant, detail and trace (labels, states, outcomes)
    v = fast.violations[0]
    _, failing = replay(m, [action for action, _, _ in v.trace])
    if v.invariant == "bounds":
        assert any(f.startswith("bounds") for f in failing)
    elif v.invariant != "slot_free_reachable":  # replay reports flat_reachable only among the reachability pair
        assert v.invariant in failing


def test_auto_engine_falls_back_to_the_reference_for_capabilities_it_does_not_encode() -> None:
    mutants = ComposedModel(SLOT, PROFILES["mutants"])
    assert set(unsupported_bounds(PROFILES["mutants"])) >= {"second_price_level", "lagging_stream_budget"}
    assert "second_price_level" in why_unsupported(mutants)
    with pytest.raises(FastUnsupported):
        FastModel(mutants)
    small = attrs.evolve(PROFILES["mutants"], max_trades=1, max_lots=1, cancel_budget=0)
    _, engine, why = run_check(ComposedModel(SLOT, small), "auto")
    assert engine == "reference" and "lagging_stream_budget" in why
    assert not unsupported_bounds(PROFILES["default"]) and not unsupported_bounds(PROFILES["deep"])
    assert run_check(ComposedModel(SLOT, PROFILES["smoke"]), "auto")[1] == "fast"


def test_cli_verify_reports_the_engine_and_refuses_fast_for_unknown_capabilities() -> None:
    runner = CliRunner()
    for engine, expected in (("auto", "fast"), ("fast", "fast"), ("reference", "reference")):
        result = runner.invoke(app, ["verify", "--profile", "smoke", "--json", "--engine", engine])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["engine"] == expected and report["states"] == 2_555
    refused = runner.invoke(app, ["verify", "--profile", "mutants", "--engine", "fast"])
    assert refused.exit_code == 2 and "second_price_level" in refused.output
    assert runner.invoke(app, ["verify", "--profile", "smoke", "--engine", "turbo"]).exit_code == 2


def test_generated_source_is_built_from_validated_names_only() -> None:
    """Identifiers in the compiled source are the IR's validated names behind fixed prefixes; no spec text."""
    fm = FastModel(ComposedModel(SLOT, PROFILES["smoke"]))
    assert "def successors(st):" in fm.source and "def holds(st):" in fm.source
    for t in SLOT.transitions:
        assert t.doc not in fm.source
    assert "import" not in fm.source and "__" not in fm.source


@pytest.mark.parametrize("name", ["smoke", "no_single_slot_check"])
def test_search_step_checks_the_invariants_like_holds_and_gives_the_same_successors(name: str) -> None:
    """The search calls `step_of[state](st, True)`: None exactly where `holds` fails (the same generated checks),
    else exactly `successors(st)`; on the smoke profile and on a mutant whose invariants fail."""
    if name == "smoke":
        m = ComposedModel(SLOT, attrs.evolve(PROFILES["smoke"], foreign_budget=1))
    else:
        mutant = MUTANTS[name]
        m = ComposedModel(load_machine_text(mutant.apply(SLOT_TEXT), "slot.yaml"), mutant.bounds)
    fm = FastModel(m)
    seen = {fm.initial()}
    queue = [fm.initial()]
    failing = 0
    for st in queue:
        checked = fm.step_of[st[0]](st, True)
        if not fm.holds(st):
            assert checked is None
            failing += 1
            continue
        assert checked == fm.successors(st)
        for _, n, _ in checked:
            if n is not None and n not in seen and len(seen) < 20_000:
                seen.add(n)
                queue.append(n)
    assert (failing > 0) == (name != "smoke") and len(seen) > (2_000 if name == "smoke" else 20)


@pytest.mark.parametrize("max_states", [2, 37, 500, 1_234])
def test_a_search_cut_at_max_states_matches_the_reference(max_states: int) -> None:
    """The fast engine derives the fired rows from the slot reactions it memoised; a search cut at max_states
    (in the middle of a state's successors) still reports the reference's states, transitions and fired rows."""
    m = ComposedModel(SLOT, attrs.evolve(PROFILES["smoke"], foreign_budget=1))
    fast, ref = check_fast(m, max_states=max_states), check(m, max_states=max_states)
    assert not fast.complete
    same_search(fast, ref)


def test_states_are_short_tuples_whose_slot_configurations_are_interned() -> None:
    """A state is (slot configuration id, packed environment, *orders): the slot's state and variables are
    stored once per configuration, and map back to the reference's State."""
    m = ComposedModel(SLOT, PROFILES["smoke"])
    fm = FastModel(m)
    init = fm.initial()
    assert len(init) == fm.n_prefix == 2
    assert fm.to_state(init) == m.initial()
    seen = {init}
    queue = [init]
    for st in queue:
        for _, n, _ in fm.successors(st):
            if n is not None and n not in seen:
                seen.add(n)
                queue.append(n)
    assert len({fm.to_state(st) for st in seen}) == len(seen)
    assert len(fm.slots) < len(seen) // 4
