"""`pink replay TRACE.json`: a model checker counterexample driven through the real runtime kernel.

The checker explores the exact interpreter of the spec; the runtime runs the generated machine inside the
kernel (identity routing, fee and account logic, refusals). This module follows a trace's actions on the
composed model (to know every event and its parameters, and the state the model reached) and sends the same
events, translated into the kernel's own input types, to a real `Kernel`, comparing after every step the slot
state and every slot variable. Divergence means the runtime does not behave as the verified model does: a
generator bug, a kernel that adds or loses behaviour, or a trace from another spec version.

Translation: one venue lot is one contract unit (lot size 1), prices are per lot, each order's client id is the
kernel's own (`<prefix><session>_<ref>`, refs allocated in the same order as the model's), a fill's execution
id is `<ref>:<cum>:<fee>` (so a repeated report is recognised as the same execution, as on a live stream), the
foreign order of the model is an order with another client id, and time advances 1 ms per step (60 s when the
model lets the hot window pass). The kernel marks a new trade at its reference price; `mark_px` is therefore not
compared.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from pink_codegen.verify.model import FOREIGN_ORDER, Action, ComposedModel, State
from pink_fsm.kernel import (
    CancelIntent,
    ClientOrderId,
    ContractSpec,
    EnterIntent,
    ExecId,
    ExitIntent,
    Kernel,
    KernelConfig,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRef,
    OrderRejected,
    Side,
    Symbol,
    TradeWritten,
    VenueTruth,
)
from pink_fsm.kernel.events import KernelEvent

SYMBOL = Symbol("MODEL", "USDT")
SEED_CAPITAL_USDT = Decimal(10) ** 9  # never the reason an entry is refused
IGNORED_VARS = frozenset({"mark_px"})
HOT_WINDOW_PASSES_MS = 60_000


class ReplayError(ValueError):
    """The trace cannot be followed (another spec version, another profile, a malformed file)."""


@attrs.frozen
class ReplayStep:
    n: int
    action: str
    model_state: str
    model_outcome: str
    runtime_state: str
    runtime_outcome: str
    differences: tuple[str, ...]  # "var: model X != runtime Y", state mismatch first

    @property
    def diverged(self) -> bool:
        return bool(self.differences)


@attrs.frozen
class ReplayReport:
    invariant: str
    profile: str
    steps: tuple[ReplayStep, ...]
    model_violations: tuple[str, ...]  # what the model says fails at the end of the trace

    @property
    def first_divergence(self) -> ReplayStep | None:
        return next((s for s in self.steps if s.diverged), None)


def load_trace(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(invariant, action labels) of a `verify --trace-out` file (or one violation of `verify --json`)."""
    trace = data.get("trace")
    if not isinstance(trace, list) or not all(isinstance(step, Mapping) and isinstance(step.get("action"), str)
                                              for step in trace):
        raise ReplayError("trace: expected a list of steps with an 'action' label (a `pink-codegen verify "
                          "--trace-out` file)")
    return str(data.get("invariant", "")), [str(step["action"]) for step in trace]


class _Runtime:
    def __init__(self, fee_rate: Fraction) -> None:
        contract = ContractSpec(SYMBOL, Decimal(1), Decimal("0.0001"), 125, _dec(fee_rate), _dec(fee_rate))
        self.kernel = Kernel({SYMBOL: contract}, SEED_CAPITAL_USDT, KernelConfig(client_id_prefix="pink",
                                                                               session="0"))
        self.ts_ms = 1

    def client(self, ref: int) -> ClientOrderId:
        if ref == FOREIGN_ORDER:
            return ClientOrderId("other_system_1")
        return ClientOrderId(f"pink0_{ref}")

    def event_for(self, action: Action) -> KernelEvent | None:
        self.ts_ms += 1
        p = dict(action.params)
        ts = self.ts_ms
        m = self.kernel.slot.model
        if not action.event:
            self.ts_ms += HOT_WINDOW_PASSES_MS
            return None
        if action.event == "ENTER":
            ratios = tuple(_dec(r) for r in (p["new_leg_ratio_0"], p["new_leg_ratio_1"]) if r)
            return EnterIntent(ts, SYMBOL, Side[str(p["new_side"])], Decimal(int(p["qty_lots"])), _dec(p["px"]),
                               Decimal(int(p["new_leverage"])),
                               VenueTruth(bool(p["probe_ok"]), int(p["venue_position_lots"])),
                               int(p["exit_legs"]), ratios)
        if action.event == "EXIT":
            lots = int(p["qty_lots"])
            return ExitIntent(ts, Decimal(lots) if lots else None, "model")
        if action.event == "CANCEL":
            return CancelIntent(ts, "ENTRY" if p["order"] == m.entry_order else "EXIT")
        if action.event == "TRADE_WRITTEN":
            return TradeWritten(ts, m.trade_seq)
        ref = OrderRef(SYMBOL, self.client(int(p["order"])), None)
        if action.event == "ACK":
            return OrderAccepted(ts, ref)
        if action.event == "REJECT":
            return OrderRejected(ts, ref, "model reject")
        if action.event == "CANCELLED":
            return OrderCancelled(ts, ref)
        if action.event == "FILL":
            cum, fee = int(p["cum_lots"]), _dec(p["cum_fee_usdt"])
            return OrderFilled(ts, ref, ExecId(f"{p['order']}:{cum}:{fee}"), Decimal(cum), _dec(p["cum_quote_usdt"]),
                               fee, False)
        raise ReplayError(f"no kernel event for the model's {action.event}")


def replay_on_runtime(model: ComposedModel, labels: Sequence[str], invariant: str = "") -> ReplayReport:
    from pink_codegen.verify.checker import replay as model_replay

    runtime = _Runtime(model.bounds.fee_rate)
    s: State = model.initial()
    steps: list[ReplayStep] = []
    for n, label in enumerate(labels, start=1):
        action = next((a for a in model.actions(s) if a.label == label), None)
        if action is None:
            raise ReplayError(f"step {n}: the model has no action {label!r} in state {s.slot_state} (a trace of "
                              f"another spec version or profile?)")
        s, model_outcome, _ = model.apply(s, action)
        event = runtime.event_for(action)
        runtime_outcome = runtime.kernel.handle(event).outcome if event is not None else ""
        steps.append(ReplayStep(n, label, s.slot_state, model_outcome, runtime.kernel.slot.state, runtime_outcome,
                                tuple(_differences(model, s, runtime.kernel))))
    _, failing = model_replay(model, list(labels))
    return ReplayReport(invariant, model.bounds.name, tuple(steps), tuple(failing))


def _differences(model: ComposedModel, s: State, kernel: Kernel) -> list[str]:
    out: list[str] = []
    if s.slot_state != kernel.slot.state:
        out.append(f"state: model {s.slot_state} != runtime {kernel.slot.state}")
    runtime_vars = kernel.slot.vars()
    for name, value in model.vars(s).items():
        if name in IGNORED_VARS:
            continue
        mine, theirs = _norm(value), _norm(runtime_vars[name])
        if mine != theirs:
            out.append(f"{name}: model {_show(mine)} != runtime {_show(theirs)}")
    return out


def _norm(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool | str):
        return value
    if isinstance(value, Decimal):
        return Fraction(value)
    if isinstance(value, int | Fraction):
        return Fraction(value)
    return value


def _show(value: object) -> str:
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value} (={float(value):.6g})"
    return str(value)


def _dec(value: object) -> Decimal:
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return Decimal(value.numerator)
        result = Decimal(value.numerator) / Decimal(value.denominator)
        if Fraction(result) != value:
            raise ReplayError(f"{value} has no exact decimal form; the runtime's numbers are Decimals")
        return result
    if isinstance(value, int | str):
        return Decimal(value)
    raise ReplayError(f"not a number: {value!r}")
