"""`pink-codegen verify`: the composed slot model satisfies every invariant within bounds, and re-introduced
defects (spec mutants, applied to a copy of the spec here, never shipped) are found with a shortest trace."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from typer.testing import CliRunner

from pink_codegen.cli import app
from pink_codegen.loader import load_machine, load_machine_text
from pink_codegen.verify.checker import CheckResult, check, replay
from pink_codegen.verify.model import PROFILES, Bounds, ComposedModel

ROOT = Path(__file__).resolve().parents[1]
SLOT_TEXT = (ROOT / "spec" / "slot.yaml").read_text()


# Partial fills without faults: small and quick, and enough to tell cumulative from incremental quantities.
PARTIAL_FILLS = Bounds("partial-fills", max_lots=2, cancel_budget=0, reject_budget=0, duplicate_budget=0,
                       foreign_budget=0, venue_cancel_budget=0)


def verify(text: str, bounds: Bounds = PROFILES["smoke"]) -> CheckResult:
    return check(ComposedModel(load_machine_text(text, "slot.yaml"), bounds))


def mutate(old: str, new: str) -> str:
    assert SLOT_TEXT.count(old) >= 1, f"mutation anchor not found: {old!r}"
    return SLOT_TEXT.replace(old, new)


def test_smoke_profile_holds_and_is_complete() -> None:
    result = verify(SLOT_TEXT)
    assert result.complete and not result.violations
    assert set(result.verdicts.values()) == {"holds"}


@pytest.mark.slow
def test_default_profile_holds_and_is_complete() -> None:
    """The profile CI documents: about 236,000 states, every invariant, and flat reachable everywhere."""
    result = check(ComposedModel(load_machine(ROOT / "spec" / "slot.yaml", "spec/slot.yaml"), PROFILES["default"]))
    assert result.complete and not result.violations, [v.detail for v in result.violations]
    assert result.states > 100_000


@pytest.mark.slow
def test_mutants_profile_holds_and_is_complete() -> None:
    """Every capability on (fills reported after their cancel confirmation, a lagging stream and REST probe, two
    fill prices per order, oversized exits, three exit legs): the spec still satisfies every property."""
    result = verify(SLOT_TEXT, PROFILES["mutants"])
    assert result.complete and not result.violations, [(v.invariant, v.detail, v.trace) for v in result.violations]
    assert 50_000 < result.states < 150_000


def test_capabilities_are_off_in_the_existing_profiles() -> None:
    """smoke, default and deep explore exactly what they did before the capabilities existed (their state counts
    are the Promela export's and the fast engine's reference)."""
    capabilities = ("reorder_after_cancel_budget", "lagging_stream_budget", "second_price_level", "exit_oversize",
                    "multi_leg", "reorder_exit_orders", "later_trade_max_lots", "forget_finished_orders")
    for name in ("smoke", "default", "deep"):
        for field in capabilities:
            assert getattr(PROFILES[name], field) == getattr(Bounds(name), field), (name, field)
    assert all(getattr(PROFILES["mutants"], field) for field in capabilities if field != "reorder_exit_orders")


# A fill of an exit order reported after the order's cancel confirmation, once the next exit order is out.
REORDERED_EXITS = Bounds("reordered-exits", max_lots=2, cancel_budget=1, reject_budget=0, duplicate_budget=0,
                         foreign_budget=0, venue_cancel_budget=0, reorder_after_cancel_budget=1,
                         reorder_exit_orders=True)


@pytest.mark.slow
def test_mutants_profile_with_reordered_exit_orders_holds_and_is_complete() -> None:
    """`mutants` with exit orders' reports reordered too (and exit orders reduce-only at the venue). Not in
    `mutants` itself: the venue's reduce-only cap hides the oversized exit of `leg_size_not_capped_at_open`."""
    result = verify(SLOT_TEXT, attrs.evolve(PROFILES["mutants"], reorder_exit_orders=True))
    assert result.complete and not result.violations, [(v.invariant, v.detail, v.trace) for v in result.violations]
    assert result.states == 134_239


def test_late_exit_fill_after_the_next_exit_order_holds() -> None:
    """Finding 4 of docs/verify.md, fixed: the last fill of a cancelled exit order, reported after the cancel
    confirmation and after the router sent the next exit (the TTL -> MARKET escalation), books as exit."""
    result = verify(SLOT_TEXT, REORDERED_EXITS)
    assert result.complete and not result.violations, [(v.invariant, v.trace) for v in result.violations]


def test_late_exit_fill_of_the_replaced_exit_order_books_as_exit_lots() -> None:
    """The counterexample verify found (it ended in FOREIGN_ORDER) now books the late fill as an exit lot of the
    trade; the next exit order, reduce-only, can fill only the lot still open."""
    m = ComposedModel(load_machine_text(SLOT_TEXT, "slot.yaml"), REORDERED_EXITS)
    labels = ["policy ENTER 2 lots x3", "venue FILL #1 cum=2", "policy EXIT qty=0", "policy CANCEL EXIT #2",
              "venue FILL #2 cum=1, then CANCELLED #2 overtakes its report", "policy EXIT qty=0",
              "stream delivers FILL #2 cum=1"]
    s, outcome = m.initial(), ""
    for label in labels:
        s, outcome, _ = m.apply(s, next(a for a in m.actions(s) if a.label == label))
    assert outcome == "OK" and s.slot_state == "EXIT_SENT"
    assert (m.var(s, "exit_order"), m.var(s, "prev_exit_order"), m.var(s, "prev_exit_filled_lots")) == (3, 2, 1)
    assert (m.var(s, "exited_lots"), m.var(s, "entry_filled_lots")) == (1, 2)
    assert [a.label for a in m.actions(s) if a.label.startswith("venue FILL #3")] == ["venue FILL #3 cum=1"]
    assert replay(m, labels)[1] == []  # no spec or composed invariant fails, and flat is reachable


MUTANTS: dict[str, tuple[str, str, set[str], Bounds]] = {
    # D1: realised PnL multiplied by leverage (the exit booking's increment).
    "pnl_times_leverage": (
        ("      realised_pnl_usdt: realised_pnl_usdt + sign(side) * (delta_quote_usdt - basis_usdt)\n"
         "      fees_usdt: fees_usdt + (cum_fee_usdt - exit_order_fee_usdt)\n"
         "      active_leg: active_leg + 1 if leg_done else active_leg"),
        ("      realised_pnl_usdt: realised_pnl_usdt + leverage * sign(side) * (delta_quote_usdt - basis_usdt)\n"
         "      fees_usdt: fees_usdt + (cum_fee_usdt - exit_order_fee_usdt)\n"
         "      active_leg: active_leg + 1 if leg_done else active_leg"),
        {"pnl_is_price_change", "closed_pnl_is_price_change"},
        PROFILES["smoke"],
    ),
    # D14: the cumulative executed qty treated as incremental.
    "cumulative_as_incremental": (
        "    effect: &entry_fill_effect\n      entry_filled_lots: cum_lots\n",
        "    effect: &entry_fill_effect\n      entry_filled_lots: entry_filled_lots + cum_lots\n",
        {"books_match_venue", "exits_within_entry", "bounds"},
        PARTIAL_FILLS,
    ),
    # The stranding bug verify found: a rejected exit while its cancel is pending waits forever.
    "reject_while_cancelling_waits": (
        "  - from: [EXIT_SENT, EXIT_CANCELLING]\n    event: REJECT",
        "  - from: EXIT_SENT\n    event: REJECT",
        {"flat_reachable"},
        PROFILES["smoke"],
    ),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_spec_mutant_is_killed_with_a_named_invariant_and_a_shortest_trace(name: str) -> None:
    old, new, expected, bounds = MUTANTS[name]
    result = verify(mutate(old, new), bounds)
    assert result.violations, f"mutant {name} survived"
    violation = result.violations[0]
    assert violation.invariant in expected, (violation.invariant, violation.detail)
    assert violation.trace and violation.trace[0][0].startswith("policy ENTER")


def test_cli_verify_prints_the_verdicts_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["verify", "--profile", "smoke", "--spec", str(ROOT / "spec")])
    assert result.exit_code == 0, result.output
    assert "flat_reachable" in result.output and "complete" in result.output


def test_cli_verify_json_and_counterexample_file(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    old, new, _, _ = MUTANTS["reject_while_cancelling_waits"]
    (spec / "slot.yaml").write_text(mutate(old, new))
    trace = tmp_path / "counterexample.json"
    result = CliRunner().invoke(app, ["verify", "--profile", "smoke", "--json", "--spec", str(spec),
                                      "--trace-out", str(trace)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["verdicts"]["flat_reachable"] == "VIOLATED"
    written = json.loads(trace.read_text())
    assert written["invariant"] == "flat_reachable"
    assert any("REJECT" in step["action"] for step in written["trace"])


def test_cli_verify_unknown_profile() -> None:
    result = CliRunner().invoke(app, ["verify", "--profile", "huge", "--spec", str(ROOT / "spec")])
    assert result.exit_code == 2 and "unknown profile" in result.output


def test_emitted_regression_fails_while_the_bug_is_there_and_passes_once_fixed(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = tmp_path / "spec"
    spec.mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    old, new, _, _ = MUTANTS["reject_while_cancelling_waits"]
    (spec / "slot.yaml").write_text(mutate(old, new))
    out = tmp_path / "regressions"
    result = CliRunner().invoke(app, ["verify", "--profile", "smoke", "--spec", str(spec), "--emit-tests", str(out)])
    assert result.exit_code == 1
    emitted = sorted(out.glob("test_counterexample_*.py"))
    assert [p.name for p in emitted] == ["test_counterexample_flat_reachable.py"]

    def run() -> int:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(emitted[0])],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False).returncode

    assert run() == 1  # the defect is in the spec: the regression fails
    (spec / "slot.yaml").write_text(SLOT_TEXT)
    assert run() == 0  # fixed: the regression passes
