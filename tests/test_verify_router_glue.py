"""The routed model's glue is the runtime's: random paths through the slot x router x venue model
(codegen/pink_codegen/verify/routed.py) drive the runtime's execution router (pink_fsm/runtime/exec_router.py)
with the same calls across the router boundary (plans, withdrawals, urgent exits, TTL sweeps, requote gates,
venue reports of attempts), and every step's outputs must be the same: the attempts sent (id, MARKET or
post-only, lots), the attempt cancels, and the events for the slot (ack, cumulative fill, cancelled,
rejected). A difference is either a glue bug in the runtime or a model that checks something else."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from pink_codegen.build import load_named
from pink_codegen.verify.routed import ATTEMPTS_PER_ORDER, ROUTED_PROFILES, RoutedModel, RoutedProfile
from pink_fsm.generated.router import MissPolicy, Style
from pink_fsm.kernel.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRef,
    OrderRejected,
    PlaceOrder,
)
from pink_fsm.kernel.values import ClientOrderId, ExecId
from pink_fsm.ports import OrderType, Quote
from pink_fsm.runtime.exec_router import CancelAttempt, ExecConfig, ExecRouter, RouterOutput, SendOrder
from tests.runtime_helpers import FET, contracts

ROOT = Path(__file__).resolve().parents[1]
SLOT = load_named(ROOT / "spec", "slot")
ROUTER = load_named(ROOT / "spec", "router")
Entry = tuple[object, ...]


def attempt_id(ref: int) -> str:
    return f"w{ref // ATTEMPTS_PER_ORDER}_{ref % ATTEMPTS_PER_ORDER}"


def attempt_ref(client_id: str) -> int:
    working, number = client_id[1:].split("_")
    return int(working) * ATTEMPTS_PER_ORDER + int(number)


class Runtime:
    """The runtime's ExecRouter, driven by the model's calls across the router boundary."""

    def __init__(self, profile: RoutedProfile) -> None:
        p = profile.plan
        config = ExecConfig(entry_style=Style[p.entry_style], exit_style=Style[p.exit_style],
                            entry_miss_policy=MissPolicy[p.entry_miss_policy], entry_retries=p.entry_retries,
                            entry_ttl_ms=p.entry_ttl_ms, exit_ttl_ms=p.exit_ttl_ms)
        quote = Quote(0, FET, Decimal("0.5999"), Decimal("0.6001"), Decimal("0.6"))
        self.router = ExecRouter(contracts(), config, lambda _: quote)
        self.now_ms = 1_000
        self.execs = 0

    def feed(self, entry: Entry) -> list[Entry]:
        kind, r = entry[0], self.router
        if kind == "place":
            _, ref, role, lots = entry
            assert isinstance(ref, int) and isinstance(lots, int)
            command = PlaceOrder(ClientOrderId(f"w{ref}"), FET, str(role), "SELL" if role == "ENTRY" else "BUY",
                                 Decimal(lots), lots, role == "EXIT", 1)
            return self.outputs(r.place(command, self.now_ms))
        if kind == "withdraw":
            return self.outputs(r.withdraw(f"w{entry[1]}", FET, self.now_ms))
        if kind == "urgent_exit":
            return self.outputs(r.urgent_exit(self.now_ms))
        if kind == "tick":  # time passes up to the quote's deadline
            self.now_ms = max(self.now_ms, r.working[f"w{entry[1]}"].machine.model.deadline_ms)
            return self.outputs(r.tick(self.now_ms))
        if kind == "gate":
            _, ref, venue_lots, age_ms, slot_lots = entry
            assert isinstance(venue_lots, int) and isinstance(age_ms, int) and isinstance(slot_lots, int)
            return self.outputs(r.gate(f"w{ref}", probe_ok=True, venue_position_lots=venue_lots,
                                       own_fill_age_ms=age_ms, slot_open_lots=slot_lots, now_ms=self.now_ms))
        assert kind == "report", entry
        _, event, ref, detail = entry
        assert isinstance(ref, int)
        order = OrderRef(FET, ClientOrderId(attempt_id(ref)), None)
        if event == "FILL":
            assert isinstance(detail, int)
            self.execs += 1
            qty = Decimal(detail)
            out = r.on_venue_event(OrderFilled(self.now_ms, order, ExecId(f"x{self.execs}"), qty, qty, Decimal(0),
                                               False))
        elif event == "ACK":
            out = r.on_venue_event(OrderAccepted(self.now_ms, order))
        elif event == "CANCELLED":
            out = r.on_venue_event(OrderCancelled(self.now_ms, order))
        else:
            out = r.on_venue_event(OrderRejected(self.now_ms, order, "post only: would take" if detail
                                                 else "insufficient margin"))
        assert out is not None, entry
        return self.outputs(out)

    @staticmethod
    def outputs(out: RouterOutput) -> list[Entry]:
        found: list[Entry] = []
        for action in out.actions:
            if isinstance(action, SendOrder):
                found.append(("send", attempt_ref(action.request.client_id),
                              action.request.order_type is OrderType.MARKET, int(action.request.qty)))
            elif isinstance(action, CancelAttempt):
                found.append(("cancel", attempt_ref(action.client_id)))
        for event in out.kernel_events:
            assert event.ref.client_id is not None
            ref = int(event.ref.client_id.value[1:])
            name = {OrderAccepted: "ACK", OrderFilled: "FILL", OrderCancelled: "CANCELLED",
                    OrderRejected: "REJECT"}[type(event)]
            cum = int(event.cum_qty) if isinstance(event, OrderFilled) else None
            found.append(("slot", name, ref, cum))
        return found


def by_kind(entries: list[Entry]) -> dict[str, list[Entry]]:
    return {kind: [e for e in entries if e[0] == kind] for kind in ("send", "cancel", "slot")}


@pytest.mark.parametrize("profile", ["router", "router-cancel", "router-lag", "router-market", "router-taker"])
def test_random_model_paths_make_the_runtime_router_do_the_same(profile: str) -> None:
    assert SLOT is not None and ROUTER is not None
    rng = random.Random(20261125)
    steps = checked = 0
    for _ in range(60):
        m = RoutedModel(SLOT, ROUTER, ROUTED_PROFILES[profile])
        runtime = Runtime(m.profile)
        s = m.initial()
        for _ in range(40):
            actions = [a for a in m.actions(s) if a.event not in ("CRASH", "RECOVER", "RECONCILE")]
            if not actions:
                break
            action = rng.choice(actions)
            m.glue_log = []
            nxt, outcome, _ = m.apply(s, action)
            log, m.glue_log = m.glue_log, None
            assert not outcome.startswith("UNHANDLED "), (action.label, outcome)
            if outcome == "UNHANDLED":
                continue
            expected = by_kind([e for e in log if e[0] in ("send", "cancel", "slot")])
            got: list[Entry] = []
            for entry in log:
                if entry[0] not in ("send", "cancel", "slot"):
                    got += runtime.feed(entry)
            assert by_kind(got) == expected, (profile, action.label, log, got)
            checked += bool(log)
            steps += 1
            s = nxt
    assert steps > 1_000 and checked > 200, (steps, checked)  # steps that crossed the router boundary
