"""`pink-codegen verify` on the slot x router x venue composition (codegen/pink_codegen/verify/routed.py).

Every order the slot places is worked by a router machine (the exact interpreter of spec/router.yaml) and the
venue sees its attempts, glued exactly as the runtime's execution router glues them. The router's bugs are
killed by the router mutants of the kill matrix (tests/test_verify_mutants.py); here: the shipped routed
profiles hold, their sizes are pinned (a change to the model or the specs that moves them is seen), the glue
behaves as the runtime's does on the situations the checker found, and the CLI and emitted regressions work for
routed profiles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pink_codegen.build import load_named
from pink_codegen.cli import app
from pink_codegen.verify.checker import check, replay
from pink_codegen.verify.mutants import BY_NAME
from pink_codegen.verify.routed import ROUTED_PROFILES, RoutedModel, RoutedState, routed_violations

ROOT = Path(__file__).resolve().parents[1]
SLOT = load_named(ROOT / "spec", "slot")
ROUTER = load_named(ROOT / "spec", "router")
assert SLOT is not None and ROUTER is not None

# profile -> (states, transitions, max depth) of a complete search in which every property holds
SIZES = {
    "router-smoke": (696, 3166, 12),
    "router-lag": (7061, 29116, 16),
    "router-market": (7463, 31250, 16),
    "router-taker": (19238, 111199, 17),
    "router-cancel": (32051, 134514, 20),
    "router": (81495, 341546, 21),
    "router-crash": (27887, 132932, 20),
}


def model(profile: str) -> RoutedModel:
    return RoutedModel(SLOT, ROUTER, ROUTED_PROFILES[profile])


@pytest.mark.parametrize("profile", list(SIZES))
def test_routed_profile_holds_and_its_size_is_pinned(profile: str) -> None:
    m = model(profile)
    result = check(m)
    assert result.complete and not result.violations, [(v.invariant, v.detail, v.trace) for v in result.violations]
    assert set(result.verdicts.values()) == {"holds"}
    # the router's own invariants and the routed composition's are checked, not only the slot's
    assert {"router.requote_only_after_gate", "working_within_target", "working_orders_end"} <= set(result.verdicts)
    assert (result.states, result.transitions, result.max_depth) == SIZES[profile]
    assert m.fired_router_rows, "the router machine was never stepped"


def test_every_shipped_profile_is_pinned() -> None:
    assert set(SIZES) == set(ROUTED_PROFILES)


def follow(m: RoutedModel, labels: list[str]) -> RoutedState:
    s = m.initial()
    for label in labels:
        action = next((a for a in m.actions(s) if a.label == label), None)
        assert action is not None, (label, [a.label for a in m.actions(s)])
        nxt, outcome, _ = m.apply(s, action)
        assert not outcome.startswith("UNHANDLED"), (label, outcome)
        assert isinstance(nxt, RoutedState)
        s = nxt
    return s


def test_a_missed_entry_requotes_as_a_second_attempt_of_the_same_working_order() -> None:
    """Glue: the slot's order #1 is worked as attempts #11, #12 (`<working>_<n>` in the runtime); the slot only
    ever hears of #1, with the cumulative over both attempts (D14)."""
    m = model("router-smoke")
    s = follow(m, ["policy ENTER 1 lots x3", "venue REJECT #11 (post-only would take)",
                   "runtime: requote gate for #1 (venue position 0)"])
    (w,) = s.working
    assert w.attempts == (11, 12) and w.router_state == "MAKER_SENT" and not w.ended
    assert s.slot_state == "ENTRY_SUBMITTED"  # a miss and a re-quote are the router's business
    s = follow(m, ["policy ENTER 1 lots x3", "venue REJECT #11 (post-only would take)",
                   "runtime: requote gate for #1 (venue position 0)", "venue FILL #12 cum=1"])
    assert s.slot_state == "POSITION_OPEN" and m.var(s, "entry_filled_lots") == 1
    assert s.working[0].router_state == "FILLED" and s.working[0].ended


def test_an_exit_ttl_escalates_to_market_and_the_slot_sees_one_exit_order() -> None:
    m = model("router-smoke")
    s = follow(m, ["policy ENTER 1 lots x3", "venue FILL #11 cum=1", "policy EXIT qty=0",
                   "clock: the quote of #2 expires (TTL)", "venue CANCELLED #21"])
    exit_order = s.working[1]
    assert exit_order.router_state == "TAKER_SENT" and exit_order.attempts == (21, 22)
    assert s.slot_state == "EXIT_SENT"  # the cancelled attempt never reached the slot
    s = follow(m, ["policy ENTER 1 lots x3", "venue FILL #11 cum=1", "policy EXIT qty=0",
                   "clock: the quote of #2 expires (TTL)", "venue CANCELLED #21", "venue FILL #22 cum=1"])
    assert s.slot_state == "CLOSED" and s.position_lots == 0


def test_a_crash_with_an_exit_working_adopts_the_position_and_the_old_exit_is_never_booked() -> None:
    """Crash/recovery (recovery.py): the restarted runtime reads open orders first (the earlier session's exit
    attempt is cancelled), then positions (adopted as a new trade). A fill of the old attempt racing that cancel
    is not the new slot's (FOREIGN_ORDER, never booked) and makes the runtime reconcile: the slot then matches the
    venue again."""
    m = model("router-crash")
    before = ["policy ENTER 2 lots x3", "venue FILL #11 cum=2", "policy EXIT qty=0",
              "runtime crashes; on restart recovery reads open orders"]
    s = follow(m, before)
    assert s.recovery == 1 and s.working == () and s.slot_state == "IDLE" and s.earlier == (11, 21)
    assert [o.cancel_requested for o in s.orders if o.live] == [True]  # the old exit attempt #21
    s = follow(m, [*before, "recovery reads positions"])
    assert s.slot_state == "POSITION_OPEN" and s.adopted_lots == 2 and m.var(s, "entry_filled_lots") == 2
    assert m.var(s, "trade_seq") == 2 and m.var(s, "leverage") == 3
    s = follow(m, [*before, "recovery reads positions", "venue FILL #21 cum=1"])
    assert s.reconcile_due and s.slot_state == "POSITION_OPEN" and m.var(s, "exited_lots") == 0  # never booked
    s = follow(m, [*before, "recovery reads positions", "venue FILL #21 cum=1",
                   "runtime reconciles with the venue (an earlier-session order filled)"])
    assert not s.reconcile_due and s.adopted_lots == 1 and m.var(s, "entry_filled_lots") == 1
    assert routed_violations(m, s) == []
    # D5: capital was re-anchored to the wallet (the lost session's entry fee and the racing exit lot's PnL and
    # fee are in it), so the kernel's capital equals what our fills did to the wallet.
    assert s.anchor_usdt == m.wallet_usdt(s) - m.net_usdt(s) and s.anchor_usdt != 0


def test_recovery_without_reanchoring_breaks_capital_consistency() -> None:
    """D5, the runtime mutant of the kill matrix: the entry's fee is in the wallet, not in a fresh kernel."""
    mutant = BY_NAME["recovery_does_not_reanchor_capital"]
    assert mutant.routed is not None and not mutant.routed.reanchor
    m = RoutedModel(SLOT, ROUTER, mutant.routed)
    s = follow(m, ["policy ENTER 1 lots x3", "venue FILL #11 cum=1",
                   "runtime crashes; on restart recovery reads open orders", "recovery reads positions"])
    assert [name for name, _ in routed_violations(m, s)] == ["capital_consistency"]


def test_recovery_reading_positions_first_loses_a_fill_between_the_reads() -> None:
    """D9, the runtime mutant of the kill matrix: read the other way round, a fill between the two reads (its
    report lost with the old user stream) is in neither read; the slot is flat on a venue position."""
    mutant = BY_NAME["recovery_reads_positions_first"]
    assert mutant.routed is not None and mutant.routed.positions_first
    m = RoutedModel(SLOT, ROUTER, mutant.routed)
    s = follow(m, ["policy ENTER 1 lots x3", "runtime crashes; on restart recovery reads positions",
                   "venue FILL #11 cum=1", "recovery reads open orders"])
    assert s.slot_state == "IDLE" and s.position_lots == -1
    assert {name for name, _ in routed_violations(m, s)} == {"one_entry_exposure", "book_matches_position"}


@pytest.mark.parametrize("name", ["withdraw_waits_for_cancelled_quote", "late_reject_ignored_while_cancelling",
                                  "urgent_exit_waits_for_cancelled_quote"])
def test_the_findings_counterexample_replays_clean_on_the_fixed_router(name: str) -> None:
    """The router bugs the composition found (spec/router.yaml rows added for them): the shortest counterexample
    of the bug, followed on the shipped specs, ends in a state from which flat is reachable again."""
    from pink_codegen.loader import load_machine_text
    from pink_codegen.verify.mutants import run_mutant

    mutant = BY_NAME[name]
    assert mutant.routed is not None
    router_text = (ROOT / "spec" / "router.yaml").read_text()
    result = run_mutant(mutant, (ROOT / "spec" / "slot.yaml").read_text(), router_text=router_text)
    assert result.status == "killed" and result.invariant == "flat_reachable", result
    labels = [step[0] for step in result.trace]
    _, failing = replay(RoutedModel(SLOT, ROUTER, mutant.routed), labels)
    assert failing == [], failing
    _, failing = replay(RoutedModel(SLOT, load_machine_text(mutant.apply(router_text), "router.yaml"),
                                    mutant.routed), labels)
    assert "flat_reachable" in failing


def test_cli_verify_router_profile_json_runs_the_reference_engine() -> None:
    result = CliRunner().invoke(app, ["verify", "--profile", "router-smoke", "--json", "--spec", str(ROOT / "spec")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["engine"] == "reference" and report["complete"] and report["states"] == SIZES["router-smoke"][0]
    assert "capital_consistency" in report["verdicts"] and "book_matches_position" in report["verdicts"]
    assert isinstance(report["router_dead_rows"], list) and report["verdicts"]["working_orders_end"] == "holds"


def test_cli_refuses_the_fast_engine_and_the_promela_export_for_routed_profiles() -> None:
    result = CliRunner().invoke(app, ["verify", "--profile", "router-smoke", "--engine", "fast", "--spec",
                                      str(ROOT / "spec")])
    assert result.exit_code == 2 and "slot x venue composition only" in result.output
    result = CliRunner().invoke(app, ["export-promela", "--profile", "router", "--spec", str(ROOT / "spec")])
    assert result.exit_code == 2 and "router" in result.output and "Promela" in result.output
    result = CliRunner().invoke(app, ["verify", "--profile", "routr", "--spec", str(ROOT / "spec")])
    assert result.exit_code == 2 and "router-smoke" in result.output


def test_emitted_regression_for_a_router_bug_fails_then_passes_once_fixed(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    for name in ("slot.yaml", "venue.yaml"):
        (spec / name).write_text((ROOT / "spec" / name).read_text())
    router_text = (ROOT / "spec" / "router.yaml").read_text()
    (spec / "router.yaml").write_text(BY_NAME["requote_ignores_hot_window"].apply(router_text))
    out = tmp_path / "regressions"
    result = CliRunner().invoke(app, ["verify", "--profile", "router-lag", "--spec", str(spec), "--emit-tests",
                                      str(out)])
    assert result.exit_code == 1, result.output
    emitted = sorted(out.glob("test_counterexample_*.py"))
    assert emitted, result.output

    def run() -> int:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(emitted[0])],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False).returncode

    assert run() == 1  # the defect is in the spec: the regression fails
    (spec / "router.yaml").write_text(router_text)
    assert run() == 0  # fixed: the regression passes
