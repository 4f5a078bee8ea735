"""`pink replay`: model traces driven through the real runtime kernel must agree with the model step by step;
a counterexample found on a mutated spec diverges where the runtime (built from the true spec) refuses the bug."""

from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

from pink_codegen.build import load_specs
from pink_codegen.loader import load_machine_text
from pink_codegen.verify.checker import check
from pink_codegen.verify.model import PROFILES, ComposedModel
from pink_codegen.verify.report import violation_json
from pink_codegen.verify.runtime_replay import replay_on_runtime
from pink_fsm.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXIT_PNL = "realised_pnl_usdt: realised_pnl_usdt + sign(side) * (delta_quote_usdt - basis_usdt)"


def project_model(profile: str = "default") -> ComposedModel:
    slot = next(m for m, _ in load_specs(ROOT / "spec", ROOT) if m.name == "slot")
    return ComposedModel(slot, PROFILES[profile])


def random_walk(model: ComposedModel, rng: random.Random, steps: int) -> list[str]:
    s, labels = model.initial(), []
    for _ in range(steps):
        actions = list(model.actions(s))
        if not actions:
            break
        action = rng.choice(actions)
        s, _, _ = model.apply(s, action)
        labels.append(action.label)
    return labels


def test_random_model_paths_run_identically_on_the_runtime_kernel() -> None:
    """Kernel conformance beyond the generated machine: identity routing, fees and refusals must not change
    what the verified model does (400 seeded walks of 40 steps on the default profile, faults included)."""
    model = project_model()
    rng = random.Random(20261124)
    visited: set[str] = set()
    for _ in range(400):
        report = replay_on_runtime(model, random_walk(model, rng, 40))
        first = report.first_divergence
        assert first is None, f"step {first.n} {first.action}: {first.differences}"
        visited.update(step.model_state for step in report.steps)
    assert {"POSITION_OPEN", "EXIT_SENT", "CLOSED", "TRADE_TERMINAL_WRITTEN", "ENTRY_CANCELLING"} <= visited


def test_a_mutant_counterexample_diverges_on_the_real_runtime(tmp_path: Path) -> None:
    text = (ROOT / "spec" / "slot.yaml").read_text(encoding="utf-8")
    assert EXIT_PNL in text
    mutated = text.replace(EXIT_PNL, EXIT_PNL.replace("+ sign(side)", "+ leverage * sign(side)"))
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "slot.yaml").write_text(mutated, encoding="utf-8")
    slot = load_machine_text(mutated, str(spec_dir / "slot.yaml"))
    result = check(ComposedModel(slot, PROFILES["smoke"]))
    assert result.violations, "the D1 mutant must be caught"
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps({**violation_json(result.violations[0]), "profile": "smoke"}), encoding="utf-8")
    out = CliRunner().invoke(app, ["replay", str(trace), "--spec", str(spec_dir), "--json"])
    assert out.exit_code == 1, out.output
    data = json.loads(out.output)
    first = data["steps"][data["first_divergence"] - 1]
    assert any(d.startswith("realised_pnl_usdt") for d in first["differences"]), first
    assert data["model_violations"], "the model's own verdict at the end of the trace is reported"


def test_a_bad_trace_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text('{"trace": [{"action": "policy TELEPORT"}]}', encoding="utf-8")
    out = CliRunner().invoke(app, ["replay", str(bad)])
    assert out.exit_code == 2 and "no action 'policy TELEPORT'" in out.output
    bad.write_text("[1, 2", encoding="utf-8")
    assert CliRunner().invoke(app, ["replay", str(bad)]).exit_code == 2
