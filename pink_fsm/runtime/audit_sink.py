"""The engine's audit sink backed by the DuckDB audit log (`pink_fsm.audit.AuditLog`).

The engine records kernel inputs (with the state before and the result after), router steps, the venue
actions it hands out and market ticks; `commit()` is the turn's group commit, made before any action of the
turn is sent (D12). Venue actions are recorded in the log's command shape: an attempt is a `PlaceOrder` under
the attempt's own client id, its order type and price in `detail`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pink_fsm.audit import AuditLog
from pink_fsm.fsm.machine import Step
from pink_fsm.kernel.events import CancelOrder, Command, KernelEvent, KernelResult, PlaceOrder, SetLeverage
from pink_fsm.kernel.kernel import Kernel
from pink_fsm.kernel.values import ClientOrderId
from pink_fsm.ports import Quote
from pink_fsm.runtime.engine import SetLeverageAction
from pink_fsm.runtime.exec_router import CancelAttempt, SendOrder


class DuckDbAudit:
    def __init__(self, log: AuditLog, kernel: Kernel) -> None:
        self.log = log
        self.kernel = kernel

    @property
    def healthy(self) -> bool:
        return self.log.healthy

    def kernel_input(self, event: KernelEvent, result: KernelResult, from_state: str, local_ts_ms: int) -> None:
        self.log.kernel_input(event, result, from_state, local_ts_ms, trade_seq=self.kernel.slot.model.trade_seq)

    def command(self, command: Command | SendOrder | CancelAttempt | SetLeverageAction, ts_ms: int) -> None:
        trade_seq = self.kernel.slot.model.trade_seq
        if isinstance(command, SendOrder):
            r = command.request
            lots = self.kernel.contracts[r.symbol].lots_floor(r.qty)
            place = PlaceOrder(ClientOrderId(r.client_id), r.symbol, command.role, r.side, r.qty, lots,
                               r.reduce_only, trade_seq)
            detail = f"{r.order_type.value}" + (f" @ {r.price_px}" if r.price_px is not None else "") \
                + (" post-only" if r.post_only else "") + f" (working order {command.working_id})"
            self.log.command(place, ts_ms, outcome="HANDED_TO_VENUE", detail=detail, trade_seq=trade_seq)
        elif isinstance(command, CancelAttempt):
            self.log.command(CancelOrder(ClientOrderId(command.client_id), command.symbol), ts_ms,
                             outcome="HANDED_TO_VENUE", trade_seq=trade_seq)
        elif isinstance(command, SetLeverageAction):
            self.log.command(SetLeverage(command.symbol, command.leverage), ts_ms, outcome="HANDED_TO_VENUE",
                             trade_seq=trade_seq)
        # Kernel commands are recorded with the kernel input that produced them (AuditLog.kernel_input).

    def router_step(self, working_id: str, step: Step, ts_ms: int) -> None:
        self.log.router(step, ts_ms, client_id=working_id, trade_seq=self.kernel.slot.model.trade_seq)

    def tick_batch(self, quotes: Sequence[Quote]) -> None:
        self.log.tick_batch(quotes)

    def bad_frame(self, frame: object, reason: str, ts_ms: int) -> None:
        self.log.bad_frame(frame, reason, ts_ms)

    def checkpoint(self, kernel_snapshot: dict[str, Any], reason: str, ts_ms: int) -> None:
        self.log.checkpoint(kernel_snapshot, reason, ts_ms)

    def commit(self) -> None:
        self.log.commit()
        self.log.maybe_export()
