"""`pink bench --area checker`: how fast `pink-codegen verify` explores the composed model.

It lives with the checker (the runtime package never imports the compiler); `pink bench` finds it by name.
`checker.vs_spin_ratio` needs the Promela export, which does not exist yet, so it is not reported.
"""

from __future__ import annotations

from typing import Final

from pink_codegen.build import find_project_root, load_specs
from pink_codegen.verify.checker import check
from pink_codegen.verify.model import PROFILES, ComposedModel
from pink_fsm.bench.runner import Area, Figures, ProgressFn, Settings, Target

STATES_PER_S_TARGET: Final = 100_000


def run(settings: Settings, progress: ProgressFn) -> Figures:
    root = find_project_root()
    if root is None:
        raise RuntimeError("the checker area needs a pink-fsm checkout (spec/ and pyproject.toml) around the "
                           "current directory")
    slot = next(m for m, _ in load_specs(root / "spec", root) if m.name == "slot")
    profile = "smoke" if settings.mode == "quick" else "default"
    progress(f"verify ({profile})", 0, 1)
    result = check(ComposedModel(slot, PROFILES[profile]))
    progress(f"verify ({profile})", 1, 1)
    return {
        "states": result.states,
        "transitions": result.transitions,
        "max_depth": result.max_depth,
        "seconds": round(result.seconds, 3),
        "states_per_s": round(result.states_per_s, 1),
        "us_per_state": round(1e6 / result.states_per_s, 2) if result.states_per_s else 0.0,
        "complete": int(result.complete),
        "violations": len(result.violations),
    }


AREA: Final = Area(
    name="checker",
    doc="pink-codegen verify on the smoke (quick) or default profile: distinct states per second",
    run=run,
    figure_docs={
        "states": "distinct states explored",
        "transitions": "transitions taken",
        "max_depth": "deepest breadth-first level",
        "seconds": "time to verdict",
        "states_per_s": "distinct states per second (one core)",
        "us_per_state": "µs per distinct state",
        "complete": "1 when the search finished within its bounds",
        "violations": "properties violated (0 expected)",
    },
    targets=(Target("us_per_state", round(1e6 / STATES_PER_S_TARGET, 2),
                    f"at least {STATES_PER_S_TARGET:,} distinct states/s"),),
)
