"""`pink-codegen export-promela`: SPIN, run on the exported composed model, reaches the same verdicts as
`pink-codegen verify` and stores exactly as many states (issue 5, "Cross-check with SPIN").

SPIN (Debian package `spin`) and a C compiler are needed; without them these tests skip, unless
PINK_REQUIRE_SPIN=1 (set by .ci/run, which installs spin) turns the skip into a failure.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import attrs
import pytest
from typer.testing import CliRunner

from pink_codegen.cli import app
from pink_codegen.ir import Machine
from pink_codegen.loader import load_machine, load_machine_text
from pink_codegen.verify.checker import CheckResult, check
from pink_codegen.verify.model import PROFILES, Bounds, ComposedModel
from pink_codegen.verify.promela import PromelaError, SpinRun, export, run_spin, spin_available

ROOT = Path(__file__).resolve().parents[1]
SLOT_TEXT = (ROOT / "spec" / "slot.yaml").read_text()
SLOT = load_machine(ROOT / "spec" / "slot.yaml", "spec/slot.yaml")

# D1 from tests/test_verify_mutants.py's catalogue: realised PnL multiplied by leverage at every exit fill.
PNL_EXIT_BOOKING = ("      realised_pnl_usdt: realised_pnl_usdt + sign(side) * (delta_quote_usdt - basis_usdt)\n"
                    "      fees_usdt: fees_usdt + (cum_fee_usdt - exit_order_fee_usdt)\n")
PNL_TIMES_LEVERAGE = PNL_EXIT_BOOKING.replace("realised_pnl_usdt + sign(side)",
                                              "realised_pnl_usdt + leverage * sign(side)")
PNL_KILLERS = {"pnl_is_price_change", "closed_pnl_is_price_change"}


@pytest.fixture
def spin() -> None:
    if not spin_available():
        if os.environ.get("PINK_REQUIRE_SPIN"):
            pytest.fail("SPIN is required (PINK_REQUIRE_SPIN) but 'spin' or 'cc' is not on PATH")
        pytest.skip("SPIN not installed (.ci/run installs the Debian package 'spin')")


def both(slot: Machine, bounds: Bounds, workdir: Path) -> tuple[CheckResult, SpinRun]:
    return check(ComposedModel(slot, bounds)), run_spin(export(slot, bounds), workdir)


def assert_same_verdicts_and_states(ours: CheckResult, theirs: SpinRun) -> None:
    assert ours.complete and not ours.violations, [v.invariant for v in ours.violations]
    assert theirs.complete and theirs.errors == 0, theirs.output
    assert theirs.violated == ()
    assert theirs.states_stored == ours.states, (theirs.states_stored, ours.states)


def test_spin_stores_exactly_the_smoke_profiles_states_and_every_invariant_holds(spin: None, tmp_path: Path) -> None:
    ours, theirs = both(SLOT, PROFILES["smoke"], tmp_path)
    assert_same_verdicts_and_states(ours, theirs)


@pytest.mark.slow
def test_spin_stores_exactly_the_default_profiles_states_and_every_invariant_holds(spin: None,
                                                                                  tmp_path: Path) -> None:
    ours, theirs = both(SLOT, PROFILES["default"], tmp_path)
    assert_same_verdicts_and_states(ours, theirs)
    assert ours.states > 100_000


def test_pnl_times_leverage_mutant_is_caught_by_spin_as_by_verify(spin: None, tmp_path: Path) -> None:
    """The export is not vacuous: D1 re-introduced fails an assertion in SPIN too."""
    assert SLOT_TEXT.count(PNL_EXIT_BOOKING) == 1
    mutant = load_machine_text(SLOT_TEXT.replace(PNL_EXIT_BOOKING, PNL_TIMES_LEVERAGE), "slot.yaml")
    ours, theirs = both(mutant, PROFILES["smoke"], tmp_path)
    assert ours.violations and ours.violations[0].invariant in PNL_KILLERS
    assert theirs.errors == 1 and set(theirs.violated) & PNL_KILLERS, theirs.output


def test_export_is_deterministic_and_names_its_spec_and_scale() -> None:
    text = export(SLOT, PROFILES["default"])
    assert text == export(SLOT, PROFILES["default"])
    assert f"sha256 {SLOT.sha256}" in text.splitlines()[0] and "DO NOT EDIT" in text.splitlines()[0]
    assert "#define SCALE 1\n" in text  # prices 3000 / 2000 and fee rate 1/1000: every amount is whole
    for name in ("pnl_is_price_change", "books_match_venue", "division_exact", "bounds", "venue_event_handled"):
        assert f"assert(holds_{name})" in text


def test_spin_matches_verify_when_amounts_need_scaling(spin: None, tmp_path: Path) -> None:
    """Prices 2.5 and 2 at a fee rate of 1/1000 give fees of 0.0025 USDT per lot: SCALE 10^4, same states."""
    fractional = attrs.evolve(PROFILES["smoke"], name="fractional", price_levels=(Fraction(5, 2), Fraction(2)))
    text = export(SLOT, fractional)
    assert "#define SCALE 10000\n" in text and "p_ENTER_px = 25000" in text
    ours, theirs = both(SLOT, fractional, tmp_path)
    assert_same_verdicts_and_states(ours, theirs)


def test_export_refuses_a_profile_with_a_model_capability_it_does_not_encode() -> None:
    @attrs.frozen
    class Extended(Bounds):
        teleporting_orders: bool = False

    assert export(SLOT, Extended("off"))  # off: the same model, exported
    with pytest.raises(PromelaError, match="teleporting_orders"):
        export(SLOT, Extended("on", teleporting_orders=True))


def test_cli_export_promela_writes_the_model_and_refuses_unknown_profiles(tmp_path: Path) -> None:
    out = tmp_path / "smoke.pml"
    result = CliRunner().invoke(app, ["export-promela", "--profile", "smoke", "--out", str(out),
                                      "--spec", str(ROOT / "spec")])
    assert result.exit_code == 0, result.output
    assert out.read_text() == export(SLOT, PROFILES["smoke"])
    result = CliRunner().invoke(app, ["export-promela", "--profile", "huge", "--spec", str(ROOT / "spec")])
    assert result.exit_code == 2 and "unknown profile" in result.output
