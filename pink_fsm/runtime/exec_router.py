"""The execution router: one generated router machine per working order, pure, clock injected.

The kernel thinks in *working orders* (one entry, one exit, each with the kernel's client id); the venue sees
*attempts* (a post-only quote, then maybe a re-quote or a MARKET order for the rest), each with its own client
id `<working id>_<attempt>`. This module is the only place that knows both:

* kernel `PlaceOrder` -> router `PLAN`; router `SEND_MARKET` / `SEND_POST_ONLY` -> a new attempt (`SendOrder`);
* kernel `CancelOrder` -> router `WITHDRAW`; `CANCEL_WORKING` -> `CancelAttempt`; `PROBE_VENUE` -> `ProbeGate`;
* an attempt's venue events -> router events, and -> kernel events for the working order: a fill becomes the
  working order's cumulative fill (the sum over its attempts, D14), an ack is forwarded, and a router final
  state becomes the working order's end (`OrderCancelled` for PARTIAL_DONE / SKIPPED / WITHDRAWN,
  `OrderRejected` for REJECTED). Attempt cancels never reach the kernel directly: the router decides whether
  a cancelled attempt ends the order or escalates it (no_stranded_exit).

Frames that name no attempt of ours are not this module's: `on_venue_event` returns None and the caller hands
them to the kernel, whose identity routing attributes them (D3, D7).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from decimal import Decimal

import attrs

from pink_fsm.fsm.machine import Step
from pink_fsm.generated.router import MissPolicy, Role, RouterMachine, Style
from pink_fsm.kernel.events import (
    KernelEvent,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRef,
    OrderRejected,
    PlaceOrder,
    VenueEvent,
)
from pink_fsm.kernel.values import ClientOrderId, ContractSpec, Symbol
from pink_fsm.ports import OrderRequest, OrderType, PlaceResult, Quote, RejectCode

ZERO = Decimal(0)
FINAL_STATES = frozenset({"FILLED", "PARTIAL_DONE", "SKIPPED", "REJECTED", "WITHDRAWN"})
MAX_FINISHED = 256  # finished working orders kept so their late frames still route (bounded memory)
POST_ONLY_HINTS = ("post", "would take", "would immediately", "maker")


@attrs.frozen
class ExecConfig:
    """How orders are worked. Entries default to a post-only quote at the touch with one gated re-quote;
    exits to a post-only quote that escalates to MARKET when its TTL expires (no_stranded_exit)."""

    entry_style: Style = Style.MAKER
    entry_ttl_ms: int = 20_000
    entry_miss_policy: MissPolicy = MissPolicy.RETRY
    entry_retries: int = 1
    exit_style: Style = Style.MAKER
    exit_ttl_ms: int = 15_000
    maker_offset_ticks: int = 0  # 0 = at the touch (bid for a buy, ask for a sell); > 0 = further away

    def __attrs_post_init__(self) -> None:
        for name in ("entry_ttl_ms", "exit_ttl_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3_600_000:
                raise ValueError(f"exec.{name}: 1 ms to 1 h, got {value!r}")
        if isinstance(self.entry_retries, bool) or not isinstance(self.entry_retries, int) \
                or not 0 <= self.entry_retries <= 5:
            raise ValueError(f"exec.entry_retries: 0-5 (the router bounds re-quotes), got {self.entry_retries!r}")
        if isinstance(self.maker_offset_ticks, bool) or not isinstance(self.maker_offset_ticks, int) \
                or not 0 <= self.maker_offset_ticks <= 1000:
            raise ValueError(f"exec.maker_offset_ticks: 0-1000, got {self.maker_offset_ticks!r}")


@attrs.frozen
class SendOrder:
    working_id: str
    role: str  # "ENTRY" | "EXIT"
    request: OrderRequest


@attrs.frozen
class CancelAttempt:
    symbol: Symbol
    client_id: str


@attrs.frozen
class ProbeGate:
    """The router asks for venue truth before a re-quote (D8); answer with `ExecRouter.gate`."""

    working_id: str


RouterAction = SendOrder | CancelAttempt | ProbeGate


@attrs.frozen
class RouterStep:
    working_id: str
    step: Step


@attrs.frozen
class RouterOutput:
    actions: tuple[RouterAction, ...] = ()
    kernel_events: tuple[KernelEvent, ...] = ()
    steps: tuple[RouterStep, ...] = ()


NOTHING = RouterOutput()


@attrs.define
class Attempt:
    client_id: str
    number: int
    working: WorkingOrder
    venue_id: str | None = None
    cum_qty: Decimal = ZERO
    cum_quote_usdt: Decimal = ZERO
    cum_fee_usdt: Decimal | None = ZERO
    is_maker: bool = False


@attrs.define
class WorkingOrder:
    command: PlaceOrder
    contract: ContractSpec
    machine: RouterMachine
    attempts: list[Attempt] = attrs.Factory(list)
    ended: bool = False
    acked: bool = False
    final_state: str = ""

    @property
    def working_id(self) -> str:
        return self.command.client_id.value

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None


class _Out:
    """Accumulates one call's actions, kernel events and steps."""

    def __init__(self) -> None:
        self.actions: list[RouterAction] = []
        self.kernel_events: list[KernelEvent] = []
        self.steps: list[RouterStep] = []

    def freeze(self) -> RouterOutput:
        return RouterOutput(tuple(self.actions), tuple(self.kernel_events), tuple(self.steps))


class ExecRouter:
    """Works the kernel's orders at the venue. Pure: time comes in as arguments, prices from `quote_of`."""

    def __init__(self, contracts: dict[Symbol, ContractSpec], config: ExecConfig,
                 quote_of: Callable[[Symbol], Quote | None]) -> None:
        self.contracts = contracts
        self.config = config
        self.quote_of = quote_of
        self.working: collections.OrderedDict[str, WorkingOrder] = collections.OrderedDict()
        self._active: dict[str, WorkingOrder] = {}  # the not-ended subset of `working` (asked on every quote)
        self.by_attempt: dict[str, Attempt] = {}
        self.by_venue_id: dict[str, Attempt] = {}
        self.check_invariants = True
        # Building a `transitions` machine costs ~0.3 ms; a finished one is reset and reused instead, which
        # keeps decision-to-order latency low (a snapshot restore costs ~2 us).
        self._pool: list[RouterMachine] = [RouterMachine()]
        self._initial = self._pool[0].snapshot()

    # ------------------------------------------------------------------ views

    def active(self) -> list[WorkingOrder]:
        return list(self._active.values())

    @property
    def idle(self) -> bool:
        return not self._active

    def active_exit(self) -> WorkingOrder | None:
        return next((w for w in self.active() if w.command.role == "EXIT"), None)

    def next_deadline_ms(self) -> int | None:
        """When the TTL sweep next has something to do (exact deadlines on the virtual clock)."""
        due = [w.machine.model.deadline_ms for w in self.active()
               if w.machine.state in ("MAKER_SENT", "MAKER_RESTING")]
        return min(due) if due else None

    def owns(self, client_id: str) -> bool:
        return client_id in self.by_attempt

    # ------------------------------------------------------------------ kernel commands

    def place(self, command: PlaceOrder, now_ms: int) -> RouterOutput:
        out = _Out()
        contract = self.contracts[command.symbol]
        working = WorkingOrder(command, contract, self._machine())
        self.working[working.working_id] = working
        self._active[working.working_id] = working
        self._forget_finished()
        entry = command.role == "ENTRY"
        c = self.config
        step = working.machine.plan(
            plan_role=Role.ENTRY if entry else Role.EXIT,
            plan_style=c.entry_style if entry else c.exit_style,
            plan_miss_policy=c.entry_miss_policy,
            retries=c.entry_retries,
            qty_lots=command.qty_lots,
            plan_ttl_ms=c.entry_ttl_ms if entry else c.exit_ttl_ms,
            clock_ms=now_ms,
        )
        self._after(working, step, out, now_ms)
        return out.freeze()

    def _machine(self) -> RouterMachine:
        machine = self._pool.pop() if self._pool else RouterMachine()
        machine.restore(self._initial)
        machine.check_invariants = self.check_invariants
        return machine

    def withdraw(self, client_id: str, symbol: Symbol, now_ms: int) -> RouterOutput:
        """The kernel's CancelOrder. Unknown ids (e.g. orders of an earlier session found at reconcile) are
        cancelled at the venue directly."""
        out = _Out()
        working = self.working.get(client_id)
        if working is None:
            out.actions.append(CancelAttempt(symbol, client_id))
            return out.freeze()
        if not working.ended:
            self._after(working, working.machine.withdraw(), out, now_ms)
        return out.freeze()

    def urgent_exit(self, now_ms: int) -> RouterOutput:
        out = _Out()
        working = self.active_exit()
        if working is not None:
            self._after(working, working.machine.urgent_exit(), out, now_ms)
        return out.freeze()

    # ------------------------------------------------------------------ venue answers

    def on_place_result(self, action: SendOrder, result: PlaceResult, now_ms: int) -> RouterOutput:
        """The venue's synchronous answer to an attempt. A refusal means no order exists at the venue."""
        out = _Out()
        attempt = self.by_attempt.get(action.request.client_id)
        if attempt is None:
            return out.freeze()
        if result.accepted:
            assert result.venue_id is not None
            attempt.venue_id = result.venue_id
            self.by_venue_id[result.venue_id] = attempt
            return out.freeze()
        working = attempt.working
        if working.ended or attempt is not working.current:
            return out.freeze()
        would_take = result.reject_code is RejectCode.POST_ONLY_WOULD_TAKE
        self._after(working, working.machine.reject(post_only_would_take=would_take), out, now_ms,
                    reason=f"{result.reject_code.value}: {result.reject_reason}")
        return out.freeze()

    def on_venue_event(self, event: VenueEvent) -> RouterOutput | None:
        """Route one normalised venue event of an attempt; None when it names no attempt of ours."""
        ref = getattr(event, "ref", None)
        if not isinstance(ref, OrderRef):
            return None
        attempt = self.by_attempt.get(ref.client_id.value) if ref.client_id is not None else None
        if attempt is None and ref.venue_id is not None:
            attempt = self.by_venue_id.get(ref.venue_id.value)
        if attempt is None:
            return None
        if attempt.venue_id is None and ref.venue_id is not None:
            attempt.venue_id = ref.venue_id.value
            self.by_venue_id[attempt.venue_id] = attempt
        working = attempt.working
        out = _Out()
        current = attempt is working.current and not working.ended
        if isinstance(event, OrderFilled):
            self._fill(attempt, event, out, current)
        elif isinstance(event, OrderAccepted):
            if not working.acked:  # the working order is acknowledged once; later attempts' acks are the router's
                working.acked = True
                out.kernel_events.append(OrderAccepted(event.ts_ms, self._working_ref(working)))
            if current:
                self._after(working, working.machine.ack(), out, event.ts_ms)
        elif isinstance(event, OrderCancelled):
            if current:
                self._after(working, working.machine.cancelled(), out, event.ts_ms)
        elif isinstance(event, OrderRejected) and current:
            would_take = any(hint in event.reason.lower() for hint in POST_ONLY_HINTS)
            self._after(working, working.machine.reject(post_only_would_take=would_take), out, event.ts_ms,
                        reason=event.reason)
        return out.freeze()

    def _fill(self, attempt: Attempt, event: OrderFilled, out: _Out, current: bool) -> None:
        # Cumulative per attempt: keep the furthest report (a stale one changes nothing), a settled fee
        # replaces a missing one for the same quantity.
        if event.cum_qty > attempt.cum_qty or (event.cum_qty == attempt.cum_qty and attempt.cum_fee_usdt is None):
            attempt.cum_qty = event.cum_qty
            attempt.cum_quote_usdt = event.cum_quote_usdt
            attempt.cum_fee_usdt = event.cum_fee_usdt
            attempt.is_maker = event.is_maker
        working = attempt.working
        qty, quote, fee = ZERO, ZERO, ZERO
        fee_known = True
        for a in working.attempts:
            qty += a.cum_qty
            quote += a.cum_quote_usdt
            if a.cum_fee_usdt is None:
                fee_known = False
            else:
                fee += a.cum_fee_usdt
        out.kernel_events.append(OrderFilled(event.ts_ms, self._working_ref(working), event.exec_id, qty, quote,
                                             fee if fee_known else None, event.is_maker))
        if current:
            try:
                lots = working.contract.lots(attempt.cum_qty)
            except ValueError:
                return  # the kernel refuses the frame too (BAD_FRAME) and says why
            self._after(working, working.machine.fill(cum_lots=lots), out, event.ts_ms)

    # ------------------------------------------------------------------ clock and gate

    def tick(self, now_ms: int) -> RouterOutput:
        if not self._active:
            return NOTHING
        out = _Out()
        for working in self.active():
            step = working.machine.tick(clock_ms=now_ms)
            if step.dest != step.source or step.emitted:
                self._after(working, step, out, now_ms)
        return out.freeze()

    def gate(self, working_id: str, *, probe_ok: bool, venue_position_lots: int, own_fill_age_ms: int,
             slot_open_lots: int, now_ms: int) -> RouterOutput:
        out = _Out()
        working = self.working.get(working_id)
        if working is None or working.ended or working.machine.state != "MISS":
            return out.freeze()
        step = working.machine.gate(probe_ok=probe_ok, venue_position_lots=venue_position_lots,
                                    own_fill_age_ms=own_fill_age_ms, slot_open_lots=slot_open_lots)
        self._after(working, step, out, now_ms)
        return out.freeze()

    # ------------------------------------------------------------------ router outputs

    def _after(self, working: WorkingOrder, step: Step, out: _Out, now_ms: int, reason: str = "") -> None:
        out.steps.append(RouterStep(working.working_id, step))
        for name, args in step.emitted:
            if name in ("SEND_MARKET", "SEND_POST_ONLY"):
                self._send(working, name == "SEND_MARKET", args["qty_lots"], out, now_ms)
            elif name == "CANCEL_WORKING":
                current = working.current
                if current is not None:
                    out.actions.append(CancelAttempt(working.command.symbol, current.client_id))
            elif name == "PROBE_VENUE":
                out.actions.append(ProbeGate(working.working_id))
        if step.dest in FINAL_STATES and not working.ended:
            working.ended = True
            working.final_state = step.dest
            self._active.pop(working.working_id, None)
            self._pool.append(working.machine)  # never fired again: late frames of an ended order skip it
            ref = self._working_ref(working)
            untouched = not working.acked and all(a.cum_qty == 0 for a in working.attempts)
            if step.dest == "REJECTED" and untouched:
                out.kernel_events.append(OrderRejected(now_ms, ref, reason or "the venue refused the order"))
            elif step.dest != "FILLED":
                # The slot takes a rejection only for an order it has not seen acknowledged or filled (the venue
                # model: a refusal comes first or never). A later attempt refused (a re-quote over the margin,
                # MARKET attempts run out) ends a working order the slot saw live: for the slot, it was cancelled.
                out.kernel_events.append(OrderCancelled(now_ms, ref))

    def _send(self, working: WorkingOrder, market: bool, qty_lots: int, out: _Out, now_ms: int) -> None:
        command = working.command
        number = len(working.attempts) + 1
        attempt = Attempt(f"{working.working_id}_{number}", number, working)
        working.attempts.append(attempt)
        self.by_attempt[attempt.client_id] = attempt
        qty = working.contract.qty(qty_lots)
        if market:
            request = OrderRequest(attempt.client_id, command.symbol, command.side, OrderType.MARKET, qty,
                                   reduce_only=command.reduce_only)
        else:
            price = self._maker_price(command.symbol, command.side, working.contract)
            if price is None:
                # No quote to price the maker order: resolve it like a post-only reject (miss path / MARKET).
                self._after(working, working.machine.reject(post_only_would_take=True), out, now_ms,
                            reason="no quote to price a post-only order")
                return
            request = OrderRequest(attempt.client_id, command.symbol, command.side, OrderType.LIMIT, qty,
                                   price_px=price, post_only=True, reduce_only=command.reduce_only)
        out.actions.append(SendOrder(working.working_id, command.role, request))

    def _maker_price(self, symbol: Symbol, side: str, contract: ContractSpec) -> Decimal | None:
        quote = self.quote_of(symbol)
        if quote is None:
            return None
        offset = contract.tick_size * self.config.maker_offset_ticks
        return quote.bid_px - offset if side == "BUY" else quote.ask_px + offset

    @staticmethod
    def _working_ref(working: WorkingOrder) -> OrderRef:
        return OrderRef(working.command.symbol, ClientOrderId(working.working_id), None)

    def _forget_finished(self) -> None:
        finished = [key for key, w in self.working.items() if w.ended]
        for key in finished[: max(0, len(finished) - MAX_FINISHED)]:
            working = self.working.pop(key)
            for attempt in working.attempts:
                self.by_attempt.pop(attempt.client_id, None)
                if attempt.venue_id is not None:
                    self.by_venue_id.pop(attempt.venue_id, None)
