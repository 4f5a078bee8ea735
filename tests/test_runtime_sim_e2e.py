"""End to end on the real embedded sim venue: `run_sim` is deterministic per seed, keeps capital equal to the
venue's wallet with zero invariant failures, and `pink run` refuses bad flags with exit code 2 naming the flag."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pink_fsm.cli import app
from pink_fsm.runtime.app import run_sim
from pink_fsm.runtime.config import load_config

WALL_FIELDS = ("wall_s", "sim_hours_per_s", "decision_to_order_p50_ms", "decision_to_order_p99_ms", "status_path",
               "audit_path")


def summary(run_dir: Path) -> dict[str, object]:
    result = run_sim(load_config(None, {"duration": "6h", "run_dir": str(run_dir)}, environ={}))
    return {k: v for k, v in result.summary.items() if k not in WALL_FIELDS}


def test_run_sim_is_deterministic_and_capital_equals_the_venue_wallet(tmp_path: Path) -> None:
    first = summary(tmp_path / "a")
    second = summary(tmp_path / "b")
    assert first == second
    assert first["invariant_failures"] == 0 and first["halted"] == ""
    assert Decimal(str(first["capital_usdt"])) == Decimal(str(first["venue_wallet_usdt"]))
    assert first["simulated_hours"] == 6.0


@pytest.mark.parametrize(("flag", "value"), [("--duration", "5x"), ("--symbols", "NOPE")])
def test_pink_run_refuses_a_bad_flag_naming_it(flag: str, value: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--json", "--run-dir", str(tmp_path), flag, value])
    assert result.exit_code == 2, result.output
    assert flag in result.output
