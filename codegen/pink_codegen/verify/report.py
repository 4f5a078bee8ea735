"""Rendering a check: the verdict table, the counterexample as readable text and as JSON."""

from __future__ import annotations

import json
from typing import Any

from pink_codegen.verify.checker import COMPOSED, REACHABILITY, CheckResult, Violation


def result_json(r: CheckResult) -> dict[str, Any]:
    return {
        "profile": r.profile,
        "complete": r.complete,
        "states": r.states,
        "transitions": r.transitions,
        "max_depth": r.max_depth,
        "seconds": round(r.seconds, 3),
        "states_per_s": round(r.states_per_s, 1),
        "verdicts": r.verdicts,
        "dead_rows": list(r.dead_rows),
        # spec/venue.yaml rows never fired (null when the engine does not track them: the fast engine)
        "venue_dead_rows": list(r.venue_dead_rows) if r.venue_fired_rows is not None and r.complete else None,
        "violations": [violation_json(v) for v in r.violations],
    }


def violation_json(v: Violation) -> dict[str, Any]:
    return {
        "invariant": v.invariant,
        "catalogue": v.catalogue,
        "detail": v.detail,
        "trace": [{"action": a, "slot_state": s, "outcome": o} for a, s, o in v.trace],
    }


def violation_text(v: Violation) -> str:
    lines = [f"VIOLATED {v.invariant} ({v.catalogue}): {v.detail}", "shortest counterexample:"]
    for n, (action, state, outcome) in enumerate(v.trace, start=1):
        note = f" [{outcome}]" if outcome and outcome != "OK" else ""
        lines.append(f"  {n:2d}. {action:<40} -> {state}{note}")
    return "\n".join(lines)


def describe_invariant(name: str) -> str:
    return {**COMPOSED, **REACHABILITY}.get(name, ("", ""))[1]


def dumps(r: CheckResult) -> str:
    return json.dumps(result_json(r), indent=2)
