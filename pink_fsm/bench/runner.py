"""`pink bench`: the registry of benchmark areas, the shared timing method, and the run over areas.

An area is a module of `pink_fsm.bench` exporting `AREA: Area`; `Area.run(settings, progress)` returns
that area's figures (a flat dict of numbers). `run_bench` measures the chosen areas one after the other
and returns one JSON-ready object keyed by area name, plus `meta` (interpreter, library versions, run
settings, targets). Keys named in an issue (for example `codegen.overhead_ratio`) are a contract that
tooling reads: rename one only together with that tooling.

Timing (`interleaved_ns`): every variant is warmed up once, then each round replays the whole workload
once per variant on a fresh object, in an order rotated by one each round (A B C, B C A, C A B, ...) so
drift and noise of the machine hit all variants alike. A replay is timed with
`time.perf_counter_ns` around the replay only (building the fresh object is not timed) and with the
garbage collector paused, as `timeit` does. Figures report the median and the minimum over the rounds.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "AREA_MODULES",
    "DEFAULT",
    "QUICK",
    "Area",
    "Figures",
    "ProgressFn",
    "Settings",
    "Target",
    "Variant",
    "area_names",
    "interleaved_ns",
    "load_area",
    "run_bench",
]

Figure = int | float
Figures = dict[str, Figure]
ProgressFn = Callable[[str, int, int], None]
"""progress(what, done, total): what the area is doing now and how far it is."""
AreaProgressFn = Callable[[str, str, int, int], None]
"""progress(area, what, done, total), as `run_bench` reports it."""

AREA_MODULES: Final[Mapping[str, str]] = {
    "codegen": "pink_fsm.bench.codegen_area",
    "kernel": "pink_fsm.bench.kernel_area",
    "audit": "pink_fsm.bench.audit_area",
    # The checker's area lives with the compiler: the runtime package never imports it directly.
    "checker": "pink_codegen.verify.bench_area",
    "runtime": "pink_fsm.bench.runtime_area",
}
"""Area name -> module exporting `AREA`. Later issues add their areas here."""


@dataclass(frozen=True)
class Settings:
    """How much to measure: the workload size (trades of the recorded stream) and the rounds."""

    mode: str
    repeats: int
    trades: int
    seed: int = 20261124


QUICK: Final = Settings(mode="quick", repeats=3, trades=20)
DEFAULT: Final = Settings(mode="default", repeats=15, trades=250)


@dataclass(frozen=True)
class Target:
    """A goal an area's figure should meet: `figures[key] <= max_value`."""

    key: str
    max_value: float
    doc: str

    def met(self, figures: Mapping[str, Figure]) -> bool:
        return figures[self.key] <= self.max_value


@dataclass(frozen=True)
class Area:
    name: str
    doc: str
    run: Callable[[Settings, ProgressFn], Figures]
    figure_docs: Mapping[str, str] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Variant:
    """One contender of a timing: `prepare()` builds a fresh object and returns the replay to time."""

    name: str
    prepare: Callable[[], Callable[[], None]]


def area_names() -> list[str]:
    return list(AREA_MODULES)


def load_area(name: str) -> Area:
    module = importlib.import_module(AREA_MODULES[name])
    area: Area = module.AREA
    return area


def _timed_ns(replay: Callable[[], None]) -> int:
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start_ns = time.perf_counter_ns()
        replay()
        return time.perf_counter_ns() - start_ns
    finally:
        if gc_was_enabled:
            gc.enable()


def interleaved_ns(variants: Sequence[Variant], repeats: int, progress: ProgressFn) -> dict[str, list[int]]:
    """Warm every variant up, then time `repeats` rounds of all variants, rotating the order each round."""
    total = len(variants) * (repeats + 1)
    done = 0
    for variant in variants:
        progress(f"warm-up {variant.name}", done, total)
        variant.prepare()()
        done += 1
    samples: dict[str, list[int]] = {variant.name: [] for variant in variants}
    for round_no in range(repeats):
        shift = round_no % len(variants)
        for variant in (*variants[shift:], *variants[:shift]):
            progress(f"round {round_no + 1}/{repeats}: {variant.name}", done, total)
            samples[variant.name].append(_timed_ns(variant.prepare()))
            done += 1
    progress("done", total, total)
    return samples


def median_and_min(samples: Sequence[int]) -> tuple[float, float]:
    return statistics.median(samples), min(samples)


def _meta(settings: Settings, results: Mapping[str, Figures], areas: Sequence[Area]) -> dict[str, Any]:
    targets = {f"{area.name}.{target.key}": {"max": target.max_value, "value": results[area.name][target.key],
                                              "met": target.met(results[area.name]), "doc": target.doc}
               for area in areas for target in area.targets}
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "transitions": importlib.metadata.version("transitions"),
        "platform": platform.platform(),
        "mode": settings.mode,
        "repeats": settings.repeats,
        "seed": settings.seed,
        "events": {name: figures["events"] for name, figures in results.items() if "events" in figures},
        "targets": targets,
    }


def run_bench(names: Sequence[str], settings: Settings,
              progress: AreaProgressFn | None = None) -> dict[str, Any]:
    """Measure the named areas (all when empty): `{area: figures, ..., "meta": {...}}`."""
    unknown = [name for name in names if name not in AREA_MODULES]
    if unknown:
        raise KeyError(f"unknown area(s) {', '.join(unknown)}; areas: {', '.join(AREA_MODULES)}")
    areas = [load_area(name) for name in (dict.fromkeys(names) if names else AREA_MODULES)]
    results: dict[str, Figures] = {}
    for area in areas:
        results[area.name] = area.run(settings, _area_progress(area.name, progress))
    report: dict[str, Any] = dict(results)
    report["meta"] = _meta(settings, results, areas)
    return report


def _area_progress(name: str, progress: AreaProgressFn | None) -> ProgressFn:
    def report(what: str, done: int, total: int) -> None:
        if progress is not None:
            progress(name, what, done, total)

    return report
