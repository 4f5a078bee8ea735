"""The spec mutant catalogue of `pink-codegen verify` (issue 5), asserted.

The catalogue and the machinery that applies a mutant and checks it live in the shipped module
`pink_codegen.verify.mutants` (so `pink-codegen verify --mutants` prints the same kill matrix); the mutated spec
text exists only in memory, nothing is written into spec/. Each mutant re-introduces one plausible bug into
`spec/slot.yaml` and must be killed by the model checker: the first violation names the invariant the bug
breaks and comes with a shortest counterexample that starts at the policy's ENTER.

`CATALOGUE` runs on small per-mutant bounds, `CAPABILITY_MUTANTS` on the `mutants` profile; the other lists keep
the rest honest:

* `SURVIVORS`: plausible bugs verify does NOT kill, each marked `xfail(strict=True)` with the precise missing
  invariant or model capability (a fix turns the xfail into a failure, so the mutant gets promoted); none today;
* `EQUIVALENT`: mutants that change nothing any property can observe, with the reason; kept out of the count;
* `REJECTED_BY_LOADER`: mutants the spec compiler's static checks refuse (overlapping guards, unreachable
  states) before verify ever runs; kept out of the count too.

Loading a mutated spec dominates (about 1.5 s per mutant, the loader's overlap analysis); the small-bounds
mutants are then checked by the fast engine in well under a second. The `mutants` profile is bigger (about
82,000 states for the spec, reference engine), but a mutant's shortest counterexample is found after a few
thousand.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pink_codegen.cli import app
from pink_codegen.errors import SpecError
from pink_codegen.loader import load_machine_text
from pink_codegen.verify.checker import COMPOSED, REACHABILITY
from pink_codegen.verify.model import PROFILES
from pink_codegen.verify.mutants import (
    BY_NAME,
    CAPABILITY_MUTANTS,
    CATALOGUE,
    EQUIVALENT,
    EXIT_PNL,
    KILLED,
    MUTANTS,
    REJECTED_BY_LOADER,
    ROUTER_MUTANTS,
    RUNTIME_MUTANTS,
    SURVIVORS,
    MutantResult,
    StaleMutant,
    run_mutant,
    summary,
)
from pink_codegen.verify.routed import ROUTED_COMPOSED, ROUTED_REACHABILITY

ROOT = Path(__file__).resolve().parents[1]
SLOT_TEXT = (ROOT / "spec" / "slot.yaml").read_text()
ROUTER_TEXT = (ROOT / "spec" / "router.yaml").read_text()
TEXTS = {"slot": SLOT_TEXT, "router": ROUTER_TEXT}

ALL = BY_NAME


@pytest.fixture(scope="session")
def verify(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], MutantResult]:
    """Verify a mutant once per test run (`run_mutant`, the engine `pink-codegen verify` would choose). Loading a
    mutated spec dominates (about 1.5 s, the loader's overlap analysis), so results are kept in memory and in this
    run's temporary directory, which pytest-xdist's workers of the same run share: the kill matrix does not check
    again what a worker already checked. The result is a function of the file name's key (mutated text and
    bounds); its seconds are those of the run that produced it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # /tmp/pytest-of-user/pytest-N: this run's directory, shared by its workers only
    folder = root / "verify-mutants"
    folder.mkdir(exist_ok=True)

    @functools.cache
    def get(name: str) -> MutantResult:
        mutant = ALL[name]
        mutated = mutant.apply(TEXTS.get(mutant.machine, SLOT_TEXT))
        key = hashlib.sha256(f"{SLOT_TEXT}\n{ROUTER_TEXT}\n{mutated}\n{mutant.routed or mutant.bounds!r}".encode()
                             ).hexdigest()[:16]
        path = folder / f"{name}-{key}.json"
        if path.exists():
            return MutantResult.from_json(json.loads(path.read_text()))
        result = run_mutant(mutant, SLOT_TEXT, router_text=ROUTER_TEXT)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_text(json.dumps(result.to_json()))
        partial.replace(path)  # atomic: a reader sees the whole result or none
        return result

    return get


def test_catalogue_is_well_formed() -> None:
    """Names unique, every anchor exact, expected invariants real, survivors explained (no checking: cheap)."""
    everything = [*KILLED, *SURVIVORS, *EQUIVALENT, *REJECTED_BY_LOADER]
    names = [m.name for m in everything]
    assert len(names) == len(set(names))
    assert names == [m.name for m in MUTANTS]  # the kill matrix runs every list, in this order
    spec_invariants = set(yaml.safe_load(SLOT_TEXT)["invariants"])
    known = spec_invariants | set(COMPOSED) | set(REACHABILITY) | {"bounds", "venue_event_handled"}
    routed_known = known | set(ROUTED_COMPOSED) | set(ROUTED_REACHABILITY) | {
        f"router.{name}" for name in yaml.safe_load(ROUTER_TEXT)["invariants"]}
    for m in everything:
        if m.machine == "runtime":  # a runtime procedure switched on in its routed profile, no spec edit
            assert not m.edits and m.routed is not None and m in RUNTIME_MUTANTS, m.name
            continue
        text = TEXTS[m.machine]
        assert m.apply(text) != text  # raises StaleMutant unless every anchor occurs as declared
        assert m.bug and m.defect
        assert (m.machine == "router") == (m.routed is not None) == (m in ROUTER_MUTANTS), m.name
    for m in (*ROUTER_MUTANTS, *RUNTIME_MUTANTS):
        assert m.kills and m.kills <= routed_known, (m.name, m.kills - routed_known)
    for m in (*CATALOGUE, *CAPABILITY_MUTANTS):
        assert m.kills and m.kills <= known, (m.name, m.kills - known)
    for m in KILLED:
        assert not m.why_survives and m.expect == "killed"
    for m in CAPABILITY_MUTANTS:
        assert m.bounds == PROFILES["mutants"], m.name
    for m in (*SURVIVORS, *EQUIVALENT):
        assert not m.kills and m.why_survives
    assert all(m.expect == "survives" for m in SURVIVORS) and all(m.expect == "equivalent" for m in EQUIVALENT)
    for m in REJECTED_BY_LOADER:
        assert m.expect == "refused" and m.refused_with and not m.kills, m.name
    assert len(CATALOGUE) >= 20


def _params() -> list[object]:
    out: list[object] = [pytest.param(m.name, id=m.name) for m in KILLED]
    out += [pytest.param(m.name, id=m.name, marks=pytest.mark.xfail(strict=True, reason=m.why_survives))
            for m in SURVIVORS]
    return out


@pytest.mark.parametrize("name", _params())
def test_mutant_is_killed_with_a_named_invariant_and_a_shortest_trace(
        name: str, verify: Callable[[str], MutantResult]) -> None:
    outcome = verify(name)
    assert outcome.invariant, f"mutant {name} survived ({outcome.states} states, complete={outcome.complete})"
    expected = ALL[name].kills or {"(a named invariant)"}
    assert outcome.invariant in expected, (outcome.invariant, outcome.detail, outcome.trace)
    assert outcome.verdict == "VIOLATED"
    assert outcome.trace, "no counterexample"
    assert outcome.trace[0][0].startswith("policy ENTER"), outcome.trace
    assert outcome.status == "killed" and outcome.expected and outcome.ok and outcome.catalogue
    assert outcome.trace_steps == len(outcome.trace) and outcome.states > 0


@pytest.mark.parametrize("name", [m.name for m in EQUIVALENT])
def test_equivalent_mutant_survives_a_complete_search(name: str, verify: Callable[[str], MutantResult]) -> None:
    """The claim that these mutants are equivalent holds within their bounds (else: promote to the catalogue)."""
    outcome = verify(name)
    assert outcome.complete and not outcome.invariant, (outcome.invariant, outcome.detail, outcome.trace)
    assert outcome.status == "equivalent" and outcome.ok


@pytest.mark.parametrize("name", [m.name for m in REJECTED_BY_LOADER])
def test_loader_rejects_mutant_before_verify(name: str, verify: Callable[[str], MutantResult]) -> None:
    mutant = ALL[name]
    with pytest.raises(SpecError, match=mutant.refused_with):
        load_machine_text(mutant.apply(SLOT_TEXT), "slot.yaml")
    outcome = verify(name)
    assert outcome.status == "refused" and outcome.expected and outcome.ok, outcome
    assert mutant.refused_with in outcome.detail and not outcome.engine  # nothing was model-checked


def test_kill_matrix(verify: Callable[[str], MutantResult]) -> None:
    """Every catalogued mutant is killed by a named invariant: the 33 of the catalogue, the 7 that need the
    `mutants` profile's capabilities, the 8 router mutants and the 3 runtime mutants (equivalent
    mutants are not counted; no survivor is left)."""
    rows: list[tuple[str, str, str, str, int]] = []
    for m in KILLED:
        outcome = verify(m.name)
        rows.append((m.name, m.defect, outcome.invariant or "SURVIVED", m.bounds.name, len(outcome.trace)))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'mutant':{width}}  defect            killed by                   bounds             trace")
    for name, defect, invariant, bound, steps in rows:
        print(f"{name:{width}}  {defect:16}  {invariant:26}  {bound:17}  {steps}")
    for m in (*SURVIVORS, *EQUIVALENT):
        kind = "EQUIVALENT" if m in EQUIVALENT else "SURVIVES"
        print(f"{m.name:{width}}  {m.defect:16}  {kind:26}  {m.bounds.name:17}  {m.why_survives[:60]}...")
    killed = {name: invariant for name, _, invariant, _, _ in rows if invariant != "SURVIVED"}
    assert set(killed) == {m.name for m in KILLED}, sorted({m.name for m in KILLED} - set(killed))
    assert all(killed[m.name] in m.kills for m in KILLED), killed
    assert len(killed) >= 52 and len(ROUTER_MUTANTS) >= 8 and len(RUNTIME_MUTANTS) >= 3 and not SURVIVORS
    # The kills are spread over the properties, not one invariant doing all the work.
    assert len(set(killed.values())) >= 6, set(killed.values())
    # What `pink-codegen verify --mutants` would conclude from the same results (exit 0).
    totals = summary([verify(m.name) for m in MUTANTS])
    assert totals["ok"] and totals["survived"] == totals["stale"] == 0, totals
    assert totals["killed"] == totals["killed_as_expected"] == len(KILLED)
    assert (totals["equivalent"], totals["refused"]) == (len(EQUIVALENT), len(REJECTED_BY_LOADER))


# ------------------------------------------------------------------------------ stale mutants and the CLI


def test_stale_mutant_is_reported_not_checked() -> None:
    """An edit whose text no longer occurs exactly `count` times is stale: never checked, never ok, and the
    message names the mutant, the missing text and where to update the edit."""
    mutant = ALL["pnl_times_leverage"]
    for text, found in ((SLOT_TEXT.replace(EXIT_PNL, ""), 0), (SLOT_TEXT + EXIT_PNL, 2)):
        with pytest.raises(StaleMutant, match=f"found {found}"):
            mutant.apply(text)
        result = run_mutant(mutant, text)
        assert result.status == "stale" and not result.ok and not result.engine and not result.states
        assert "pnl_times_leverage" in result.detail and "realised_pnl_usdt" in result.detail
        assert "pink_codegen/verify/mutants.py" in result.detail
    assert not summary([result])["ok"]


CHEAP = ("pnl_times_leverage", "exit_target_not_recorded", "cancelled_part_exit_to_position_open")


def test_cli_mutants_json_for_a_subset() -> None:
    args = ["verify", "--mutants", "--json", "--spec", str(ROOT / "spec")]
    for name in CHEAP:
        args += ["--mutant", name]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["name"]: r for r in report["mutants"]}
    assert list(rows) == list(CHEAP)  # catalogue order, only those named
    for name in ("pnl_times_leverage", "exit_target_not_recorded"):
        row = rows[name]
        assert row["status"] == "killed" and row["expected"] and row["ok"], row
        assert row["invariant"] in ALL[name].kills and row["invariant"] in row["expected_invariants"]
        assert row["trace_steps"] == len(row["trace"]) > 0
        assert row["trace"][0]["action"].startswith("policy ENTER")
        assert row["engine"] == "fast" and row["states"] > 0 and row["catalogue"]
    assert rows["cancelled_part_exit_to_position_open"]["status"] == "equivalent"
    totals = report["summary"]
    assert (totals["killed"], totals["killed_as_expected"], totals["equivalent"], totals["survived"],
            totals["refused"], totals["stale"], totals["ok"]) == (2, 2, 1, 0, 0, 0, True)
    assert report["spec"].endswith("slot.yaml")


def test_cli_mutants_stale_edit_exits_1_naming_it(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    shutil.copytree(ROOT / "spec", spec)
    slot = spec / "slot.yaml"
    # The same meaning in other words: the spec still compiles, but the mutant's anchor text is gone.
    slot.write_text(slot.read_text().replace(EXIT_PNL, EXIT_PNL.replace(
        "sign(side) * (delta_quote_usdt - basis_usdt)", "(delta_quote_usdt - basis_usdt) * sign(side)")))
    result = CliRunner().invoke(app, ["verify", "--mutants", "--mutant", "pnl_times_leverage", "--mutant",
                                      "exit_target_not_recorded", "--spec", str(spec)])
    assert result.exit_code == 1, result.output
    assert "mutant pnl_times_leverage is stale" in result.output
    assert "update the edit in pink_codegen/verify/mutants.py" in result.output
    assert "1 killed" in result.output and "1 stale" in result.output


def test_cli_mutants_unknown_name_exits_2_with_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["verify", "--mutants", "--mutant", "pnl_time_leverage", "--spec",
                                      str(ROOT / "spec")])
    assert result.exit_code == 2
    assert "no mutant named 'pnl_time_leverage'" in result.output and "did you mean pnl_times_leverage" in result.output
