"""The generated `transitions` machines equal their specs: same row, state, variables, outcome and emits
as the exact-number interpreter of the IR, step by step, on random event sequences."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import Pair, machines

MACHINES = machines()


@pytest.mark.parametrize("name", sorted(MACHINES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_machine_matches_exact_interpreter(name: str, data: st.DataObject) -> None:
    pair = Pair.new(MACHINES[name])
    steps = data.draw(st.integers(1, 60), label="steps")
    for _ in range(steps):
        event, params = pair.random_event(lambda xs: data.draw(st.sampled_from(list(xs))), tries=3)
        pair.step(event, params)


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_long_random_walks_fire_every_row_and_keep_every_invariant(name: str) -> None:
    """Seeded walks (restarting now and then) must fire every row of the table at least once, agree with
    the interpreter throughout, and never break an invariant: guards protect them against any input."""
    ir = MACHINES[name]
    counts: dict[int, int] = {}
    rng = random.Random(20261124)
    final = {s.name for s in ir.states if s.final}
    for _walk in range(400):
        pair = Pair.new(ir)
        for _ in range(200):
            if pair.state in final:  # nothing more can happen: start a new walk
                pair = Pair.new(ir)
            event, params = pair.random_event(rng.choice, tries=12, fired_count=counts)
            what = pair.step(event, params)
            if what.startswith("#"):
                counts[int(what[1:])] = counts.get(int(what[1:]), 0) + 1
            violated = pair.exact.violated(pair.state, pair.vars)
            assert not violated, f"{name}: invariants {violated} broken in {pair.state} after {event} {params}"
    never = sorted(set(range(len(ir.transitions))) - set(counts))
    assert not never, (f"{name}: rows never fired by the random walks: {never}. A row no input can reach is dead "
                       f"spec; a reachable but rare one needs more walks (or the model checker's exact coverage)")
