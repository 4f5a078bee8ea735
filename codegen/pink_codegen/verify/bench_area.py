"""`pink bench --area checker`: how fast `pink-codegen verify` explores the composed model, side by side with
SPIN on the same model exported as Promela (`pink-codegen export-promela`), in the same run.

The headline figures (`states_per_s`, `seconds`, `vs_spin_ratio`) measure the engine `verify` uses by default
(`--engine auto`: the fast engine of `verify/fast.py` when it encodes the profile); the reference checker's own
figures on the same profile follow as `reference_*` (default mode only: it needs about 40 s).

It lives with the checker (the runtime package never imports the compiler); `pink bench` finds it by name.
SPIN's time to verdict is end to end: `spin -a` (generate the verifier) + `cc` (compile it) + `./pan` (search).
Without SPIN (or a C compiler) the SPIN figures are -1 and nothing else changes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Final

import attrs

from pink_codegen.build import find_project_root, load_specs
from pink_codegen.ir import Machine
from pink_codegen.verify.checker import check
from pink_codegen.verify.fast import run_check
from pink_codegen.verify.model import PROFILES, Bounds, ComposedModel
from pink_codegen.verify.promela import SpinRun, export, run_spin, spin_available
from pink_fsm.bench.runner import Area, Figures, ProgressFn, Settings, Target

STATES_PER_S_TARGET: Final = 100_000
VS_SPIN_TARGET: Final = 2.0
NOT_MEASURED: Final = -1

# The state space as one bound grows: the default profile with 1, 2 (= default) and 3 lots per order.
# `verify` (auto engine) is timed on all three; lots3 is about 1.6 million states (about 25 s, 1.5 GB).
GROWTH: Final = tuple((f"lots{n}", attrs.evolve(PROFILES["default"], name=f"lots{n}", max_lots=n)) for n in (1, 2, 3))
VERIFY_GROWTH_UP_TO: Final = 3


def _spin(slot: Machine, bounds: Bounds) -> SpinRun | None:
    if not spin_available():
        return None
    with tempfile.TemporaryDirectory(prefix=f"pink-spin-{bounds.name}-") as tmp:
        return run_spin(export(slot, bounds), Path(tmp))


def run(settings: Settings, progress: ProgressFn) -> Figures:
    root = find_project_root()
    if root is None:
        raise RuntimeError("the checker area needs a pink-fsm checkout (spec/ and pyproject.toml) around the "
                           "current directory")
    slot = next(m for m, _ in load_specs(root / "spec", root) if m.name == "slot")
    profile = "smoke" if settings.mode == "quick" else "default"
    growth = () if settings.mode == "quick" else GROWTH
    reference = settings.mode != "quick"
    steps = 2 + int(reference) + len(growth) + min(len(growth), VERIFY_GROWTH_UP_TO)
    done = 0
    progress(f"verify ({profile})", done, steps)
    result, engine, _ = run_check(ComposedModel(slot, PROFILES[profile]), "auto")
    done += 1
    reference_figures: Figures = {}
    if reference:
        progress(f"verify ({profile}, reference engine)", done, steps)
        ref = check(ComposedModel(slot, PROFILES[profile]))
        done += 1
        reference_figures = {
            "reference_seconds": round(ref.seconds, 3),
            "reference_states_per_s": round(ref.states_per_s, 1),
            "reference_states_match": int(ref.states == result.states and ref.transitions == result.transitions
                                          and ref.verdicts == result.verdicts),
            "speedup_over_reference": round(ref.seconds / result.seconds, 1) if result.seconds > 0 else 0.0,
        }
    progress(f"spin ({profile})", done, steps)
    spin = _spin(slot, PROFILES[profile])
    done += 1
    figures: Figures = {
        "states": result.states,
        "transitions": result.transitions,
        "max_depth": result.max_depth,
        "seconds": round(result.seconds, 3),
        "states_per_s": round(result.states_per_s, 1),
        "us_per_state": round(1e6 / result.states_per_s, 2) if result.states_per_s else 0.0,
        "complete": int(result.complete),
        "violations": len(result.violations),
        "engine_fast": int(engine == "fast"),
        **_spin_figures(result.states, result.seconds, spin),
        **reference_figures,
    }
    for n, (name, bounds) in enumerate(growth, start=1):
        if n <= VERIFY_GROWTH_UP_TO:
            progress(f"verify ({name})", done, steps)
            grown = result if _same(bounds, PROFILES[profile]) else run_check(ComposedModel(slot, bounds), "auto")[0]
            figures[f"states_{name}"] = grown.states
            figures[f"seconds_{name}"] = round(grown.seconds, 3)
            done += 1
        progress(f"spin ({name})", done, steps)
        grown_spin = spin if _same(bounds, PROFILES[profile]) else _spin(slot, bounds)
        if n > VERIFY_GROWTH_UP_TO:
            figures[f"states_{name}"] = grown_spin.states_stored if grown_spin else NOT_MEASURED
        figures[f"spin_seconds_{name}"] = round(grown_spin.seconds, 3) if grown_spin else NOT_MEASURED
        done += 1
    progress("checker", steps, steps)
    return figures


def _same(a: Bounds, b: Bounds) -> bool:
    return attrs.evolve(a, name=b.name) == b


def _spin_figures(states: int, seconds: float, spin: SpinRun | None) -> Figures:
    if spin is None:
        return {"vs_spin_ratio": NOT_MEASURED, "spin_states": NOT_MEASURED, "spin_seconds": NOT_MEASURED,
                "spin_seconds_pan": NOT_MEASURED, "spin_states_per_s": NOT_MEASURED,
                "states_match_spin": NOT_MEASURED}
    return {
        "vs_spin_ratio": round(seconds / spin.seconds, 2) if spin.seconds > 0 else NOT_MEASURED,
        "spin_states": spin.states_stored,
        "spin_seconds": round(spin.seconds, 3),
        "spin_seconds_pan": round(spin.seconds_pan, 3),
        "spin_states_per_s": round(spin.states_per_s, 1),
        "states_match_spin": int(spin.complete and spin.states_stored == states),
    }


_GROWTH_DOCS: Final = {
    key: doc
    for name, bounds in GROWTH
    for key, doc in (
        (f"states_{name}", f"distinct states with {bounds.max_lots} lot(s) per order (default profile otherwise)"
                           + ("; counted by SPIN" if bounds.max_lots > VERIFY_GROWTH_UP_TO else "")),
        (f"seconds_{name}", f"verify's time to verdict with {bounds.max_lots} lot(s) per order (auto engine)"),
        (f"spin_seconds_{name}", f"SPIN's end-to-end time to verdict with {bounds.max_lots} lot(s) per order "
                                 f"(-1: SPIN not installed)"),
    )
    if not (key.startswith("seconds_") and bounds.max_lots > VERIFY_GROWTH_UP_TO)
}

AREA: Final = Area(
    name="checker",
    doc="pink-codegen verify on the smoke (quick) or default profile: distinct states per second, and SPIN on "
        "the same model exported as Promela",
    run=run,
    figure_docs={
        "states": "distinct states explored",
        "transitions": "transitions taken",
        "max_depth": "deepest breadth-first level",
        "seconds": "time to verdict (the engine verify uses: --engine auto)",
        "states_per_s": "distinct states per second (one core), of the engine verify uses",
        "engine_fast": "1 when verify's auto engine is the fast one (verify/fast.py), 0 when it fell back to the "
                       "reference checker",
        "reference_seconds": "the reference checker's time to verdict on the same profile (default mode only)",
        "reference_states_per_s": "the reference checker's distinct states per second (default mode only)",
        "reference_states_match": "1 when the reference found the same states, transitions and verdicts",
        "speedup_over_reference": "reference_seconds / seconds",
        "us_per_state": "µs per distinct state",
        "complete": "1 when the search finished within its bounds",
        "violations": "properties violated (0 expected)",
        "vs_spin_ratio": f"verify's time to verdict / SPIN's end to end (spin -a + cc + pan) on the same model; "
                         f"target <= {VS_SPIN_TARGET:g}; -1: SPIN (Debian package spin) or cc not installed",
        "spin_states": "SPIN's states, stored (-DNOREDUCE, exhaustive; -1: not installed)",
        "spin_seconds": "SPIN's time to verdict: spin -a + cc -O2 + ./pan (-1: not installed)",
        "spin_seconds_pan": "SPIN's search alone (./pan; -1: not installed)",
        "spin_states_per_s": "SPIN's states stored per second of search (-1: not installed)",
        "states_match_spin": "1 when SPIN stored exactly verify's number of states (0: they differ; -1: not "
                             "installed)",
        **_GROWTH_DOCS,
    },
    targets=(Target("us_per_state", round(1e6 / STATES_PER_S_TARGET, 2),
                    f"at least {STATES_PER_S_TARGET:,} distinct states/s"),),
)
