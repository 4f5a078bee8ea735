"""`pink bench`: the baselines implement the generated slot machine's table, and the CLI's JSON contract.

No timing thresholds here: the benchmark reports figures, tests only check that it runs and what it
compares is a fair, same-table comparison.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from transitions import Machine
from typer.testing import CliRunner

from pink_fsm.bench.handwritten_slot import (
    ROWS,
    STATES,
    VARIABLES,
    DictSlotMachine,
    HandwrittenSlotMachine,
    SlotBook,
)
from pink_fsm.bench.kernel_area import EVENT_KINDS, RecordingSlot, fresh_kernel, kernel_event_stream
from pink_fsm.bench.stream import Event, slot_event_stream
from pink_fsm.cli import app
from pink_fsm.fsm.machine import Emitted, Step, enum_value
from pink_fsm.generated.slot import SlotMachine

SEEDS = (1, 2, 3, 4, 5, 6)
TRADES = 40


def _normalised(outputs: Sequence[Emitted]) -> list[tuple[str, dict[str, Any]]]:
    """Outputs with enum members as their names: each implementation has its own `Role` enum."""
    return [(name, {key: enum_value(value) for key, value in params.items()}) for name, params in outputs]


def _book(model: SlotBook) -> dict[str, Any]:
    return {name: getattr(model, name) for name in VARIABLES}


def _assert_same_step(where: str, step: Step, expected_book: dict[str, Any], model: SlotBook) -> None:
    assert model.state == step.dest, f"{where}: state {model.state}, generated {step.dest}"
    assert model.outcome == step.outcome, f"{where}: outcome {model.outcome}, generated {step.outcome}"
    assert _normalised(model.outbox) == _normalised(step.emitted), f"{where}: outputs differ"
    book = _book(model)
    differing = {name: (book[name], expected_book[name]) for name in VARIABLES if book[name] != expected_book[name]}
    assert not differing, f"{where}: variables differ (mine, generated): {differing}"


def _replay_all_three(stream: Sequence[Event]) -> set[int]:
    """Feed the stream to the generated machine and both baselines; compare after every event."""
    generated, hand, table = SlotMachine(), HandwrittenSlotMachine(), DictSlotMachine()
    fired: set[int] = set()
    for index, (event, params) in enumerate(stream):
        where = f"event #{index} {event} {params}"
        step = generated.fire(event, **params)
        fired.add(step.transition_id)
        hand.model.outbox.clear()
        hand.model.trigger(event, **params)
        table.model.outbox.clear()
        row_id = table.fire(event, **params)
        assert row_id == step.transition_id, f"{where}: dict fired row {row_id}, generated {step.transition_id}"
        expected_book = generated.vars()
        _assert_same_step(f"hand-written, {where}", step, expected_book, hand.model)
        _assert_same_step(f"dict, {where}", step, expected_book, table.model)
    return fired


def test_baselines_declare_the_generated_tables_shape() -> None:
    assert set(VARIABLES) == set(SlotMachine.VARIABLES)
    assert set(STATES) == set(SlotMachine.STATES)
    assert sorted(row.row_id for row in ROWS) == [row.id for row in SlotMachine.TRANSITIONS]
    generated = {row.id: row for row in SlotMachine.TRANSITIONS}
    for row in ROWS:
        spec_row = generated[row.row_id]
        sources = set(STATES) if row.sources == "*" else set(row.sources)
        assert (row.event, sources, row.dest) == (spec_row.event, set(spec_row.sources), spec_row.dest), row


def _declared_dests(machine: Machine) -> Counter[str]:
    """How a `transitions` machine declares its (source, event) transitions: internal (dest None) or not."""
    kinds: Counter[str] = Counter()
    for event in machine.events.values():
        for transitions in event.transitions.values():
            for transition in transitions:
                kinds["internal" if transition.dest is None else "named"] += 1
    return kinds


def test_generated_and_handwritten_declare_self_loops_alike() -> None:
    """The like-for-like comparison: both keep the state with internal transitions (`dest=None`)."""
    generated = _declared_dests(SlotMachine().machine)
    assert generated == _declared_dests(HandwrittenSlotMachine().machine)
    assert generated["internal"] > generated["named"] > 0
    reflexive = _declared_dests(HandwrittenSlotMachine(reflexive_self_loops=True).machine)
    assert reflexive == {"named": generated["internal"] + generated["named"]}


@pytest.mark.parametrize("seed", SEEDS)
def test_handwritten_and_dict_match_the_generated_machine_after_every_event(seed: int) -> None:
    _replay_all_three(slot_event_stream(seed, TRADES))


def test_the_streams_fire_every_row_of_the_table() -> None:
    fired: set[int] = set()
    for seed in SEEDS:
        fired |= _replay_all_three(slot_event_stream(seed, TRADES))
    never = sorted({row.id for row in SlotMachine.TRANSITIONS} - fired)
    assert not never, f"rows the bench streams never fire: {never}"


def test_the_stream_is_deterministic_and_realistic() -> None:
    stream = slot_event_stream(7, 10)
    assert stream == slot_event_stream(7, 10)
    assert stream != slot_event_stream(8, 10)
    marks = sum(1 for event, _ in stream if event == "MARK_PRICE")
    assert marks > len(stream) // 2
    fills = [params for event, params in stream if event == "FILL"]
    assert any(params["cum_lots"] > 1 for params in fills)


def test_reflexive_self_loops_change_nothing_observable() -> None:
    """The `handwritten_reflexive` diagnostic only changes how `transitions` keeps the state."""
    stream = slot_event_stream(4, 15)
    internal, reflexive = HandwrittenSlotMachine(), HandwrittenSlotMachine(reflexive_self_loops=True)
    for event, params in stream:
        internal.model.trigger(event, **params)
        reflexive.model.trigger(event, **params)
        assert (internal.state, internal.model.outcome) == (reflexive.state, reflexive.model.outcome)
    assert _book(internal.model) == _book(reflexive.model)
    assert internal.model.outbox == reflexive.model.outbox


def test_pink_bench_json_quick_reports_the_codegen_contract_keys(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--json", "--quick", "--area", "codegen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == report
    codegen = report["codegen"]
    for key in ("overhead_ratio", "overhead_ratio_min", "vs_dict_ratio", "reflexive_cost_ratio"):
        assert isinstance(codegen[key], float) and codegen[key] > 0, key
    assert codegen["events"] > 0
    meta = report["meta"]
    assert meta["mode"] == "quick" and meta["repeats"] >= 1 and meta["events"]["codegen"] == codegen["events"]
    assert {"python", "transitions"} <= meta.keys()
    assert "codegen.overhead_ratio" in meta["targets"]


def test_pink_bench_table_names_the_target() -> None:
    result = CliRunner().invoke(app, ["bench", "--quick"])
    assert result.exit_code == 0, result.output
    assert "overhead_ratio" in result.stdout and "target codegen.overhead_ratio <= 1.10" in result.stdout


def test_unknown_area_exits_2_listing_the_areas() -> None:
    result = CliRunner().invoke(app, ["bench", "--json", "--area", "nope"])
    assert result.exit_code == 2
    assert "unknown area 'nope'" in result.output and "areas: codegen" in result.output
    assert result.stdout == ""


# ------------------------------------------------------------------ area `kernel`


def test_kernel_stream_is_deterministic_mixed_and_handled_as_designed() -> None:
    stream = kernel_event_stream(7, 30)
    assert repr(stream) == repr(kernel_event_stream(7, 30))  # repr: spoiled intents carry NaN, never == itself
    assert repr(stream.events) != repr(kernel_event_stream(8, 30).events)
    mix = stream.mix()
    assert set(mix) == {f"mix_{name}" for name in (
        "mark_price", "order_filled", "order_accepted", "order_cancelled", "order_rejected", "account_update",
        "funding_fee", "enter_intent", "exit_intent", "cancel_intent", "trade_written")}
    assert len(EVENT_KINDS) == len(mix) and sum(mix.values()) == len(stream.events)
    assert mix["mix_mark_price"] > len(stream.events) // 2
    for kind in ("order_filled", "order_accepted", "account_update", "enter_intent", "exit_intent", "trade_written"):
        assert mix[f"mix_{kind}"] > 0, kind
    assert {"OK", "DUPLICATE_EVENT", "STALE_EVENT", "INVALID_INTENT"} <= set(stream.outcomes)
    assert not {"KERNEL_ERROR", "HALTED", "UNHANDLED"} & set(stream.outcomes)


@pytest.mark.parametrize("seed", (1, 2, 3))
def test_kernel_and_bare_machine_replays_do_the_same_work(seed: int) -> None:
    """The fair comparison: a fresh kernel replaying the recorded kernel events returns the recorded outcomes
    and fires exactly the recorded machine events; the bare machine fed those through the raw trigger ends
    in the kernel's state with the kernel's variables."""
    stream = kernel_event_stream(seed, 40)
    slot = RecordingSlot()
    kernel = fresh_kernel(slot)
    assert [kernel.handle(event).outcome for event in stream.events] == list(stream.outcomes)
    assert slot.log == list(stream.machine_events)
    bare = SlotMachine()
    for name, params in stream.machine_events:
        bare.model.trigger(name, **params)
    assert bare.state == kernel.slot.state
    assert bare.vars() == kernel.slot.vars()
    assert kernel.slot.model.trade_seq > 10


def test_pink_bench_json_quick_reports_the_kernel_contract_keys() -> None:
    result = CliRunner().invoke(app, ["bench", "--json", "--quick", "--area", "kernel"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"kernel", "meta"}
    kernel = report["kernel"]
    for key in ("events_per_s", "events_per_s_min", "us_per_event", "machine_us_per_event", "overhead_ratio",
                "overhead_ratio_min", "workload_ratio"):
        assert isinstance(kernel[key], float) and kernel[key] > 0, key
    assert kernel["events"] > 0 and kernel["machine_events"] > 0
    assert sum(value for key, value in kernel.items() if key.startswith("mix_")) == kernel["events"]
    meta = report["meta"]
    assert meta["mode"] == "quick" and meta["events"]["kernel"] == kernel["events"]
    assert {"kernel.us_per_event", "kernel.overhead_ratio"} <= meta["targets"].keys()
    assert all(isinstance(meta["targets"][key]["met"], bool) for key in meta["targets"])


def test_pink_bench_json_quick_reports_the_checker_figures() -> None:
    """`checker.states_per_s` is reported (no timing threshold here); the quick run verifies the smoke profile
    and finds nothing wrong."""
    result = CliRunner().invoke(app, ["bench", "--json", "--quick", "--area", "checker"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)["checker"]
    assert figures["states_per_s"] > 0 and figures["complete"] == 1 and figures["violations"] == 0
