"""The sim venue checked against the declared venue model (spec/venue.yaml), order by order.

Every order the sim accepts gets a generated `VenueMachine`; each lifecycle step of the sim (acknowledgement,
execution, cancel, expiry) fires the same event on it, and the report the sim emits must be exactly the
machine's `FRAME` output (status and cumulative lots), with the machine's invariants checked after every step.
So the engine the runtime is tested against behaves as the spec says a venue may behave, and a change to
either shows up as a `VenueSpecBreach` at the first frame that differs.
"""

from __future__ import annotations

from pink_fsm.fsm.machine import MachineSnapshot, Step
from pink_fsm.generated.venue import SPEC_SHA256, OrderType, Report, VenueMachine, VenueModel


class VenueSpecBreach(AssertionError):
    """The sim emitted a report the venue spec does not allow (a bug in the sim, or a spec change)."""


_STATE_OF_STATUS = {"NEW": "OPEN", "PARTIALLY_FILLED": "PARTIALLY_FILLED", "FILLED": "FILLED",
                    "CANCELED": "CANCELLED", "EXPIRED": "EXPIRED"}
_FRESH_VARS = {k: v for k, v in vars(VenueModel()).items() if k not in ("outcome", "fired", "outbox")}


class OrderLifecycles:
    """One venue machine per live order (by the sim's order sequence number), reused once the order is over."""

    def __init__(self) -> None:
        self._machines: dict[int, VenueMachine] = {}
        self._pool: list[VenueMachine] = []
        self._initial = MachineSnapshot("venue", SPEC_SHA256, "NONE", dict(_FRESH_VARS))

    def _machine(self) -> VenueMachine:
        machine = self._pool.pop() if self._pool else VenueMachine()
        machine.restore(self._initial)
        return machine

    def accepted(self, seq: int, *, market: bool, post_only: bool, reduce_only: bool, lots: int) -> None:
        machine = self._machine()
        self._machines[seq] = machine
        step = machine.submit(new_type=OrderType.MARKET if market else OrderType.LIMIT, new_post_only=post_only,
                              new_reduce_only=reduce_only, qty_lots=lots, valid=True, crosses_book=False,
                              reduces_position=True, margin_ok=True)
        self._expect(seq, step, None)

    def resume(self, seq: int, *, market: bool, post_only: bool, reduce_only: bool, lots: int, filled_lots: int,
               status: str) -> None:
        """After a venue restore: a machine in the state the order is in."""
        machine = self._machine()
        values = dict(_FRESH_VARS, order_type=OrderType.MARKET if market else OrderType.LIMIT, post_only=post_only,
                      reduce_only=reduce_only, target_lots=lots, filled_lots=filled_lots, reported_lots=filled_lots)
        machine.restore(MachineSnapshot("venue", SPEC_SHA256, _STATE_OF_STATUS[status], values))
        self._machines[seq] = machine

    def reported(self, seq: int, event: str, status: str, cum_lots: int, lots: int = 0) -> None:
        """The sim emitted `status` with `cum_lots` for order `seq` after `event` (ack, match, cancel, expire)."""
        machine = self._machines.get(seq)
        if machine is None:
            raise VenueSpecBreach(f"order #{seq}: a {status} report for an order the venue never accepted")
        if event == "ack":
            step = machine.ack()
        elif event == "match":
            step = machine.match(lots=lots)
        elif event == "cancel":
            machine.cancel_request()
            step = machine.cancel_done()
        elif event == "expire":
            step = machine.expire()
        else:
            raise ValueError(f"unknown lifecycle event {event!r}")
        self._expect(seq, step, (status, cum_lots))
        if machine.state in ("FILLED", "CANCELLED", "EXPIRED"):
            del self._machines[seq]
            self._pool.append(machine)

    def _expect(self, seq: int, step: Step, frame: tuple[str, int] | None) -> None:
        frames = [(args["status"], args["cum_lots"]) for name, args in step.emitted if name == "FRAME"]
        if step.outcome != "OK":
            raise VenueSpecBreach(f"order #{seq}: {step.event} in {step.source} is {step.outcome} in spec/venue.yaml")
        if frame is None:
            if frames:
                raise VenueSpecBreach(f"order #{seq}: the spec reports {frames} where the sim reported nothing")
            return
        status, cum_lots = frame
        if frames != [(Report[status], cum_lots)]:
            want = ", ".join(f"{s.name} cum={c}" for s, c in frames) or "no report"
            raise VenueSpecBreach(f"order #{seq}: the sim reported {status} cum={cum_lots} after {step.event}; "
                                  f"spec/venue.yaml says {want}")
