"""Area `codegen`: what the generated slot machine costs per event, against hand-written baselines.

One recorded stream (`pink_fsm.bench.stream`) is replayed, in one run and interleaved, through:

* `generated`: the generated `SlotMachine`, fed through the raw transitions trigger
  (`model.trigger(name, **params)`): the like-for-like comparison with the hand-written machine;
* `fire`: the generated machine's typed API, `SlotMachine.fire(name, **params)`, which adds parameter
  validation, the `Step` record and the invariant checks after every event;
* `handwritten`: the same table written by hand on a plain `transitions.Machine`
  (`pink_fsm.bench.handwritten_slot`), state-keeping rows as internal transitions (`dest=None`), as the
  generated code declares them: the apples-to-apples baseline;
* `handwritten_reflexive` (diagnostic): that machine with its state-keeping rows reflexive
  (`dest="="`), as the generator used to declare them; `reflexive_cost_ratio` tells what that one
  choice costs;
* `dict`: the same rows and methods in a `dict[(state, event)]`, first passing guard wins: the floor.

`overhead_ratio` (generated / handwritten) and `vs_dict_ratio` (generated / dict) are the issue's
contract keys; both are ratios of medians of µs per event. `overhead_ratio_min` is the same ratio on
the fastest rounds (ratio of minimums).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from pink_fsm.bench.handwritten_slot import DictSlotMachine, HandwrittenSlotMachine
from pink_fsm.bench.runner import Area, Figures, ProgressFn, Settings, Target, Variant, interleaved_ns, median_and_min
from pink_fsm.bench.stream import Event, slot_event_stream
from pink_fsm.generated.slot import SlotMachine

__all__ = ["AREA", "OVERHEAD_TARGET", "variants"]

OVERHEAD_TARGET: Final = 1.10
Fire = Callable[..., object]


def _replay(fire: Fire, stream: Sequence[Event]) -> Callable[[], None]:
    def replay() -> None:
        for name, params in stream:
            fire(name, **params)

    return replay


def variants(stream: Sequence[Event]) -> tuple[Variant, ...]:
    """The contenders, each replaying `stream` on a fresh machine."""
    return (
        Variant("generated", lambda: _replay(SlotMachine().model.trigger, stream)),
        Variant("fire", lambda: _replay(SlotMachine().fire, stream)),
        Variant("handwritten", lambda: _replay(HandwrittenSlotMachine().model.trigger, stream)),
        Variant("handwritten_reflexive",
                lambda: _replay(HandwrittenSlotMachine(reflexive_self_loops=True).model.trigger, stream)),
        Variant("dict", lambda: _replay(DictSlotMachine().fire, stream)),
    )


def _us_per_event(samples_ns: Sequence[int], events: int) -> tuple[float, float]:
    median_ns, min_ns = median_and_min(samples_ns)
    return median_ns / events / 1000, min_ns / events / 1000


def _figures(samples_ns: dict[str, list[int]], events: int, settings: Settings) -> Figures:
    us: dict[str, tuple[float, float]] = {name: _us_per_event(s, events) for name, s in samples_ns.items()}
    figures: Figures = {"events": events, "repeats": settings.repeats, "trades": settings.trades}
    for name, (median_us, min_us) in us.items():
        figures[f"{name}_us_per_event"] = round(median_us, 4)
        figures[f"{name}_us_per_event_min"] = round(min_us, 4)
    generated, fire, hand = us["generated"], us["fire"], us["handwritten"]
    figures["overhead_ratio"] = round(generated[0] / hand[0], 4)
    figures["overhead_ratio_min"] = round(generated[1] / hand[1], 4)
    figures["vs_dict_ratio"] = round(generated[0] / us["dict"][0], 4)
    figures["fire_overhead_ratio"] = round(fire[0] / hand[0], 4)
    figures["reflexive_cost_ratio"] = round(us["handwritten_reflexive"][0] / hand[0], 4)
    return figures


def run(settings: Settings, progress: ProgressFn) -> Figures:
    progress("recording the event stream", 0, 1)
    stream = slot_event_stream(settings.seed, settings.trades)
    samples_ns = interleaved_ns(variants(stream), settings.repeats, progress)
    return _figures(samples_ns, len(stream), settings)


FIGURE_DOCS: Final = {
    "events": "events in the recorded stream (one replay)",
    "repeats": "timed rounds per variant",
    "trades": "slot trades recorded in the stream",
    "generated_us_per_event": "generated machine, raw transitions trigger: median µs/event",
    "fire_us_per_event": "generated machine via fire() (param checks, Step, invariants): median µs/event",
    "handwritten_us_per_event": "hand-written transitions machine, internal self-loops: median µs/event",
    "handwritten_reflexive_us_per_event": "hand-written, self-loops reflexive (dest='='): median µs/event",
    "dict_us_per_event": "dict dispatch over the same rows: median µs/event",
    "overhead_ratio": "generated / hand-written (medians): what codegen adds",
    "overhead_ratio_min": "generated / hand-written (minimums)",
    "vs_dict_ratio": "generated / dict dispatch (medians)",
    "fire_overhead_ratio": "fire() / hand-written (medians): the typed API's full price",
    "reflexive_cost_ratio": "hand-written reflexive / hand-written internal (medians): what dest='=' costs",
}

AREA: Final = Area(
    name="codegen",
    doc="generated slot machine vs a hand-written transitions machine and dict dispatch (same table)",
    run=run,
    figure_docs=FIGURE_DOCS,
    targets=(Target("overhead_ratio", OVERHEAD_TARGET, "codegen adds at most 10 % over hand-written transitions"),),
)
