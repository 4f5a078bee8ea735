"""The runtime core: kernel + exec router + policy, without I/O (sans-I/O).

Drivers (the deterministic simulation loop, the asyncio shell) feed it quotes, raw user-stream frames, clock
readings and the answers to its requests, and execute the actions it hands out. Everything that decides is
here, so the simulation and the live shell run the same code; everything that waits is in the drivers.

One loop turn: feed inputs -> `take_actions()` commits the audit (group commit) and only then returns the
actions to send, so nothing is sent that was not recorded first (D12). When the audit cannot be written,
entry orders are not sent (they resolve as refused placements) and no new entry is decided until it recovers;
exits and cancels still go: a position must always be closable.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

import attrs

from pink_fsm.fsm.machine import Step
from pink_fsm.generated.router import INVARIANTS as ROUTER_INVARIANTS
from pink_fsm.generated.slot import INVARIANTS as SLOT_INVARIANTS
from pink_fsm.kernel import persistence
from pink_fsm.kernel.events import (
    CancelOrder,
    Command,
    EnterIntent,
    ExitIntent,
    KernelEvent,
    KernelResult,
    MarkPrice,
    OrderFilled,
    PlaceOrder,
    RecordTrade,
    SetLeverage,
    TradeWritten,
    VenueTruth,
)
from pink_fsm.kernel.kernel import Kernel
from pink_fsm.kernel.normaliser import BadFrame, normalise_frame
from pink_fsm.kernel.values import ClientOrderId, Side, Symbol
from pink_fsm.ports import (
    HOLD,
    Action,
    Decision,
    MarketView,
    PlaceResult,
    Policy,
    Quote,
    RejectCode,
    SlotView,
    VenueOrder,
    VenuePosition,
)
from pink_fsm.runtime.exec_router import FINAL_STATES as FINAL_ROUTER_STATES
from pink_fsm.runtime.exec_router import (
    CancelAttempt,
    ExecConfig,
    ExecRouter,
    ProbeGate,
    RouterOutput,
    SendOrder,
)
from pink_fsm.runtime.recovery import Recovery

LOG = logging.getLogger("pink_fsm.runtime")
ZERO = Decimal(0)
ENTRY_STATES = frozenset({"ENTRY_SUBMITTED", "ENTRY_WORKING", "ENTRY_PARTIAL", "ENTRY_CANCELLING"})
EXIT_STATES = frozenset({"EXIT_REQUESTED", "EXIT_SENT", "EXIT_ACKED", "EXIT_WORKING", "EXIT_CANCELLING"})
NO_FILL_AGE_MS = 10**12
# Slot states with no order of ours live: the kernel may be reconciled with the venue in them.
QUIET_STATES = frozenset({"IDLE", "ORDER_REJECTED", "TRADE_TERMINAL_WRITTEN", "POSITION_OPEN", "PARTIALLY_CLOSED",
                          "EXIT_REJECTED"})
COMMIT_EVERY_NS = 250_000_000  # rows that cause no action are durable within a quarter second (wall time)


# ------------------------------------------------------------------ actions handed to the driver


@attrs.frozen
class SetLeverageAction:
    symbol: Symbol
    leverage: int


@attrs.frozen
class ProbeEntry:
    """Gather venue truth (open orders FIRST, then positions: D9) for an entry the policy decided."""

    decision: Decision
    ts_ms: int
    decided_ns: int


@attrs.frozen
class ReconcileRequest:
    """Read the venue again (open orders FIRST, then positions, then the wallet) and reconcile the kernel with
    it: an order of an earlier session filled beyond what recovery adopted (its fill raced recovery's cancel)."""

    reason: str


EngineAction = SetLeverageAction | SendOrder | CancelAttempt | ProbeEntry | ProbeGate | ReconcileRequest


@attrs.frozen
class VenueSnapshot:
    """The answer to a probe: what the venue showed, read open orders first, then positions (D9)."""

    ok: bool
    open_orders: tuple[VenueOrder, ...] = ()
    positions: tuple[VenuePosition, ...] = ()
    error: str = ""


class AuditSink(Protocol):
    """What the runtime records (implemented by the DuckDB audit log; `NullAudit` records nothing)."""

    @property
    def healthy(self) -> bool: ...

    def kernel_input(self, event: KernelEvent, result: KernelResult, from_state: str, local_ts_ms: int) -> None: ...

    def command(self, command: Command | SendOrder | CancelAttempt | SetLeverageAction, ts_ms: int) -> None: ...

    def router_step(self, working_id: str, step: Step, ts_ms: int) -> None: ...

    def tick_batch(self, quotes: Sequence[Quote]) -> None: ...

    def bad_frame(self, frame: object, reason: str, ts_ms: int) -> None: ...

    def checkpoint(self, kernel_snapshot: dict[str, Any], reason: str, ts_ms: int) -> None: ...

    def commit(self) -> None: ...


class NullAudit:
    healthy = True

    def kernel_input(self, event: KernelEvent, result: KernelResult, from_state: str, local_ts_ms: int) -> None:
        pass

    def command(self, command: Command | SendOrder | CancelAttempt | SetLeverageAction, ts_ms: int) -> None:
        pass

    def router_step(self, working_id: str, step: Step, ts_ms: int) -> None:
        pass

    def tick_batch(self, quotes: Sequence[Quote]) -> None:
        pass

    def bad_frame(self, frame: object, reason: str, ts_ms: int) -> None:
        pass

    def checkpoint(self, kernel_snapshot: dict[str, Any], reason: str, ts_ms: int) -> None:
        pass

    def commit(self) -> None:
        pass


@attrs.frozen
class EngineConfig:
    exec: ExecConfig = attrs.field(factory=ExecConfig)
    exit_retry_ms: int = 5_000  # a rejected exit is re-issued after this long (no_stranded_exit)
    # Marks only value the position (equity, drawdown); no kernel decision reads them, so one mark per interval
    # is enough and keeps the per-quote cost low.
    mark_interval_ms: int = 30_000


@attrs.define
class TradeRecord:
    trade_seq: int
    symbol: Symbol
    side: Side
    qty_lots: int
    entry_vwap_px: Decimal
    realised_pnl_usdt: Decimal
    fees_usdt: Decimal
    opened_ms: int
    closed_ms: int

    @property
    def net_usdt(self) -> Decimal:
        return self.realised_pnl_usdt - self.fees_usdt


@attrs.define
class Metrics:
    slot_transitions: collections.Counter[str] = attrs.Factory(collections.Counter)
    router_transitions: collections.Counter[str] = attrs.Factory(collections.Counter)
    invariant_checks: int = 0
    invariant_failures: int = 0
    decisions: collections.Counter[str] = attrs.Factory(collections.Counter)
    bad_frames: int = 0
    frames: int = 0
    quotes: int = 0
    orders_sent: int = 0
    cancels_sent: int = 0
    place_refused: int = 0
    audit_failures: int = 0
    decision_to_order_ns: list[int] = attrs.Factory(list)
    peak_equity_usdt: Decimal = ZERO
    max_drawdown_usdt: Decimal = ZERO


class Engine:
    """Kernel + exec router + policy. Build it with a recovered kernel (see `recovery.recover`)."""

    def __init__(self, kernel: Kernel, policy: Policy, config: EngineConfig | None = None,
                 audit: AuditSink | None = None, perf_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        self.kernel = kernel
        self.policy = policy
        self.config = config or EngineConfig()
        self.audit: AuditSink = audit or NullAudit()
        self.quotes: dict[Symbol, Quote] = {}
        self.router = ExecRouter(kernel.contracts, self.config.exec, self.quotes.get)
        self.now_ms = 0
        self.metrics = Metrics(peak_equity_usdt=kernel.equity_usdt)
        self.trades: dict[int, TradeRecord] = {}
        self._pending: list[EngineAction] = []
        self._after_commit: list[KernelEvent] = []
        self._entry_probe_in_flight = False
        self._decided_ns: int | None = None
        self._entry_first_fill_ms: dict[int, int] = {}
        self._exit_retry_at_ms: int | None = None
        self._exit_wanted = False  # an accepted exit has not completed yet (cleared by its FILLED or a withdrawal)
        self._exit_ids: set[str] = set()  # working ids of exit orders
        self._perf_ns = perf_ns  # wall time for latency figures only; never read by a decision
        # Orders of an earlier session cancelled at recovery -> the filled qty the adopted position already holds.
        self._recovered_orders: dict[str, Decimal] = {}
        self._reconcile_wanted = False
        self._reconcile_requested = False
        self._next_mark_ms = 0
        self._dirty = False  # something was recorded since the last commit
        self._last_commit_ns = perf_ns()
        self._version = 0  # bumped by every change the slot view can see; the view is cached between changes
        self._view: tuple[int, SlotView] | None = None

    def apply_recovery(self, recovery: Recovery) -> None:
        """Queue the cancels recovery decided (own orders nobody works any more) and make the frames those
        orders still send harmless when they only repeat what the adopted position holds."""
        self.expect_recovered_orders(recovery.cancelled_fills())
        self._cancel_unworked(recovery.cancels)
        self._dirty = self._dirty or bool(recovery.cancels)

    def expect_recovered_orders(self, filled_qty_by_client_id: dict[str, Decimal]) -> None:
        """Frames of these earlier-session orders repeat what the adopted position already holds: only a fill
        beyond the qty seen at recovery is new exposure (and then reaches the kernel, which freezes entries)."""
        self._recovered_orders.update(filled_qty_by_client_id)

    # ------------------------------------------------------------------ inputs

    def on_quotes(self, ts_ms: int, quotes: Iterable[Quote]) -> None:
        """One scan: the quotes of one instant, then one policy decision."""
        self._advance(ts_ms)
        batch = list(quotes)
        if not batch:
            return
        for quote in batch:
            self.quotes[quote.symbol] = quote
        self.metrics.quotes += len(batch)
        self.audit.tick_batch(batch)
        symbol = self.kernel.trade_symbol
        if symbol is not None and ts_ms >= self._next_mark_ms and symbol in self.quotes and not self.kernel.flat:
            self._next_mark_ms = ts_ms + self.config.mark_interval_ms
            self._kernel(MarkPrice(ts_ms, symbol, self.quotes[symbol].mid_px))
            self._note_equity()
        self._scan(ts_ms, batch[-1].symbol)

    def on_frame(self, frame: object) -> None:
        """One raw user-stream frame (its events carry their own times). A malformed frame is counted and
        recorded; it never stops the runtime."""
        self.metrics.frames += 1
        try:
            normalised = normalise_frame(frame)
        except BadFrame as exc:
            self.metrics.bad_frames += 1
            self.kernel.counters["BAD_FRAME"] += 1
            LOG.warning("bad venue frame refused: %s", exc)
            self.audit.bad_frame(frame, str(exc), self.now_ms)
            self._dirty = True
            return
        for event in normalised.events:
            self._advance(event.ts_ms)
            if self._recovered_orders and self._already_adopted(event):
                self.kernel.counters["RECOVERED_ORDER_FRAME"] += 1
                continue
            routed = self.router.on_venue_event(event)
            if routed is None:
                self._kernel(event)
            else:
                self._absorb(routed)

    def on_timer(self, now_ms: int) -> None:
        """The TTL sweep and the exit re-issue; call it at `next_timer_ms()` (or every second live)."""
        self._advance(now_ms)
        self._absorb(self.router.tick(now_ms))
        if self._exit_needs_reissue():
            if self._exit_retry_at_ms is None:
                self._exit_retry_at_ms = now_ms + self.config.exit_retry_ms
            elif now_ms >= self._exit_retry_at_ms:
                self._exit_retry_at_ms = None
                LOG.warning("exit of trade %d ended without completing: sent again", self.kernel.slot.model.trade_seq)
                self._kernel(ExitIntent(now_ms, None, "re-issue after a rejected exit"))
        else:
            self._exit_retry_at_ms = None

    def next_timer_ms(self) -> int | None:
        """When `on_timer` next has something to do (None: nothing is armed)."""
        due = None if self.router.idle else self.router.next_deadline_ms()
        retry = self._exit_retry_at_ms
        if retry is None and self._exit_needs_reissue():
            retry = self.now_ms
        if retry is not None and (due is None or retry < due):
            return retry
        return due

    def _exit_needs_reissue(self) -> bool:
        """An exit the policy asked for ended without completing (rejected, MARKET attempts run out, cancelled
        by the venue): the position must still go (no_stranded_exit), so the exit is sent again."""
        state = self.kernel.slot.state
        if self.router.active_exit() is not None:
            return False
        return state == "EXIT_REJECTED" or (self._exit_wanted and state in ("POSITION_OPEN", "PARTIALLY_CLOSED"))

    def on_entry_probe(self, probe: ProbeEntry, venue: VenueSnapshot) -> None:
        """Venue truth for a decided entry arrived: hand the kernel the intent with it (D8, D9, D15)."""
        self._entry_probe_in_flight = False
        d = probe.decision
        assert d.symbol is not None and d.qty is not None
        quote = self.quotes.get(d.symbol)
        if quote is None:
            self.metrics.decisions["ENTER_NO_QUOTE"] += 1
            return
        truth = self._truth(venue)
        self._decided_ns = probe.decided_ns
        self._kernel(EnterIntent(self.now_ms, d.symbol, d.side, d.qty, quote.mid_px, d.conviction, truth))
        if not any(isinstance(a, SendOrder) for a in self._pending):
            self._decided_ns = None  # refused: no order, no latency sample

    def on_gate_probe(self, probe: ProbeGate, venue: VenueSnapshot) -> None:
        truth = self._truth(venue)
        m = self.kernel.slot.model
        last = self.kernel.last_own_fill_ms
        age_ms = NO_FILL_AGE_MS if last is None else max(0, self.now_ms - last)
        self._absorb(self.router.gate(probe.working_id, probe_ok=truth.probe_ok,
                                      venue_position_lots=truth.position_lots, own_fill_age_ms=age_ms,
                                      slot_open_lots=m.entry_filled_lots - m.exited_lots, now_ms=self.now_ms))

    def request_exit(self, reason: str) -> bool:
        """Close the open position (shutdown with `--on-exit flatten`); False when flat or already exiting."""
        view = self.slot_view()
        if view.flat or view.exit_pending:
            return False
        return self._kernel(ExitIntent(self.now_ms, None, reason)).accepted

    def on_place_result(self, action: SendOrder, result: PlaceResult) -> None:
        if not result.accepted:
            self.metrics.place_refused += 1
            LOG.warning("venue refused %s: %s %s", action.request.client_id, result.reject_code.value,
                        result.reject_reason)
        self._absorb(self.router.on_place_result(action, result, self.now_ms))

    # ------------------------------------------------------------------ the turn

    def take_actions(self) -> list[EngineAction]:
        """Commit what this turn recorded, then hand out the actions to execute (in order)."""
        if self._reconcile_wanted:
            self._maybe_reconcile()
        if not self._pending and not self._after_commit:
            # Nothing to send: what was recorded (marks, holds, fills that cause no command) is committed with
            # the next turn that sends something, or after `COMMIT_EVERY_NS` at the latest.
            if self._dirty and self._perf_ns() - self._last_commit_ns >= COMMIT_EVERY_NS:
                self._dirty = not self._commit()
            return []
        if self._after_commit or any(not isinstance(a, ProbeEntry | ProbeGate) for a in self._pending):
            self._dirty = False
            committed = self._commit()
        else:
            committed = True  # probes only read the venue: nothing is acted on, no commit needed yet
        actions, self._pending = self._pending, []
        sendable: list[EngineAction] = []
        for action in actions:
            if isinstance(action, SetLeverageAction) and not committed:
                continue  # it prepares an entry, and no entry goes out unrecorded (D12)
            if isinstance(action, SendOrder):
                if action.role == "ENTRY" and not committed:
                    # Never act on what could not be recorded (D12): the placement resolves as refused.
                    self._absorb(self.router.on_place_result(
                        action, PlaceResult(None, RejectCode.OTHER, "audit log not writable"), self.now_ms))
                    continue
                self.metrics.orders_sent += 1
                if action.role == "ENTRY" and self._decided_ns is not None:
                    self.metrics.decision_to_order_ns.append(self._perf_ns() - self._decided_ns)
                    self._decided_ns = None
            elif isinstance(action, CancelAttempt):
                self.metrics.cancels_sent += 1
            sendable.append(action)
        if committed and self._after_commit:
            written, self._after_commit = self._after_commit, []
            for event in written:
                self._kernel(event)
        if self._pending:
            sendable.extend(self.take_actions())
        return sendable

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._after_commit)

    # ------------------------------------------------------------------ views

    def slot_view(self) -> SlotView:
        """The slot as the policy sees it, as of its last change (cached: the policy asks on every quote)."""
        version = self._version + (1 << 40 if self._entry_probe_in_flight else 0) \
            + (1 << 41 if self.audit.healthy else 0)
        if self._view is not None and self._view[0] == version:
            return self._view[1]
        view = self._compute_view()
        self._view = (version, view)
        return view

    def _compute_view(self) -> SlotView:
        k = self.kernel
        m = k.slot.model
        state = k.slot.state
        open_lots = m.entry_filled_lots - m.exited_lots
        symbol = k.trade_symbol
        lot = k.contracts[symbol].lot_size if symbol is not None else ZERO
        entry_px = m.entry_cost_usdt / (m.entry_filled_lots * lot) if m.entry_filled_lots and lot else ZERO
        flat = k.flat
        allowed = (flat and not m.entries_frozen and not k.halted and self.router.idle and not self._reconcile_wanted
                   and not self._entry_probe_in_flight and self.audit.healthy)
        return SlotView(
            ts_ms=self.now_ms, state=state, flat=flat, entries_allowed=allowed,
            symbol=symbol if not flat else None, side=m.side if not flat else Side.NONE,
            open_qty=lot * open_lots if open_lots > 0 else ZERO, entry_px=entry_px if not flat else ZERO,
            entry_ts_ms=self._entry_first_fill_ms.get(m.trade_seq, 0) if not flat else 0,
            unrealised_pnl_usdt=k.unrealised_pnl_usdt, capital_usdt=k.capital_usdt,
            exit_pending=state in EXIT_STATES or self.router.active_exit() is not None,
        )

    # ------------------------------------------------------------------ internals

    def _advance(self, ts_ms: int) -> None:
        if ts_ms > self.now_ms:
            self.now_ms = ts_ms

    def _scan(self, ts_ms: int, trigger: Symbol) -> None:
        slot = self.slot_view()
        try:
            decision = self.policy.decide(MarketView(ts_ms, self.quotes, trigger), slot)
        except Exception:  # a policy bug must not take the runtime (and its open position) down
            LOG.exception("policy_error")
            self.metrics.decisions["POLICY_ERROR"] += 1
            decision = HOLD
        if not isinstance(decision, Decision):
            self.metrics.decisions["POLICY_BAD_DECISION"] += 1
            return
        self.metrics.decisions[decision.action.value] += 1
        if decision.action is Action.ENTER:
            if not slot.entries_allowed or decision.symbol not in self.kernel.contracts or decision.qty is None:
                self.metrics.decisions["ENTER_NOT_ALLOWED"] += 1
                return
            self._entry_probe_in_flight = True
            self._pending.append(ProbeEntry(decision, ts_ms, self._perf_ns()))
        elif decision.action is Action.EXIT:
            if slot.flat:
                return
            if slot.exit_pending:
                if decision.urgent:
                    self._absorb(self.router.urgent_exit(ts_ms))
                return
            self._kernel(ExitIntent(ts_ms, decision.qty, decision.reason))

    def _already_adopted(self, event: object) -> bool:
        """True for a frame of an earlier-session order that adds nothing to what recovery adopted. A fill
        beyond it (it raced recovery's cancel) is exposure the kernel cannot book by identity: the frame is
        absorbed too, entries stop, and the kernel is reconciled with the venue again as soon as no order of
        ours is live (the venue's position is the truth, D5, D9)."""
        ref = getattr(event, "ref", None)
        client = getattr(ref, "client_id", None)
        if client is None or client.value not in self._recovered_orders:
            return False
        if isinstance(event, OrderFilled) and event.cum_qty > self._recovered_orders[client.value]:
            self._recovered_orders[client.value] = event.cum_qty
            self._reconcile_wanted = True
            self._version += 1
            self.kernel.counters["RECOVERED_ORDER_FILLED_LATE"] += 1
            LOG.warning("order %s of an earlier session filled to %s after recovery: reconciling with the venue",
                        client.value, event.cum_qty)
        return True

    def _cancel_unworked(self, cancels: Iterable[CancelOrder]) -> None:
        """Cancel at the venue own orders no one works any more (found by recovery or a reconcile)."""
        for cancel in cancels:
            action = CancelAttempt(cancel.symbol, cancel.client_id.value)
            self._pending.append(action)
            self.audit.command(action, self.now_ms)

    def _maybe_reconcile(self) -> None:
        quiet = self.kernel.slot.state in QUIET_STATES and self.router.idle and not self._entry_probe_in_flight
        if self._reconcile_wanted and quiet and not self._reconcile_requested:
            self._reconcile_requested = True
            self._pending.append(ReconcileRequest("an earlier-session order filled after recovery"))

    def on_reconcile(self, venue: VenueSnapshot, wallet_usdt: Decimal | None) -> None:
        """Venue truth for a requested reconcile: apply it (adopt, re-anchor, cancel what nobody works)."""
        self._reconcile_requested = False
        if not venue.ok:
            return  # asked again at the next quiet moment
        report = persistence.reconcile(
            self.kernel,
            [persistence.VenueOpenOrder(o.symbol, _client_id(o.client_id), o.venue_id) for o in venue.open_orders],
            [persistence.VenuePosition(p.symbol, p.side, p.qty, p.entry_px, p.leverage) for p in venue.positions],
            wallet_usdt,
        )
        self._reconcile_wanted = False
        self._version += 1
        for note in report.diagnostics:
            LOG.warning("reconcile: %s %s", note.code, note.detail)
        self._cancel_unworked(report.cancels)
        # The kernel changed outside `handle`: a checkpoint keeps the audit's replay exact.
        self.audit.checkpoint(persistence.snapshot(self.kernel), "reconcile", self.now_ms)
        self._dirty = True

    def _truth(self, venue: VenueSnapshot) -> VenueTruth:
        if not venue.ok:
            return VenueTruth(False, 0)
        own_live = {a.client_id for w in self.router.active() for a in w.attempts}
        if any(o.client_id not in own_live for o in venue.open_orders):
            # An order we are not working rests at the venue: it could fill at any moment. Not provably flat.
            return VenueTruth(False, 0)
        lots = 0
        for p in venue.positions:
            contract = self.kernel.contracts.get(p.symbol)
            if p.qty > 0:
                lots += max(1, contract.lots_floor(p.qty)) if contract is not None else 1
        return VenueTruth(True, lots)

    def _kernel(self, event: KernelEvent) -> KernelResult:
        k = self.kernel
        from_state = k.slot.state
        self._version += 1
        self._dirty = True
        result = k.handle(event)
        self.audit.kernel_input(event, result, from_state, self.now_ms)
        if result.transition_id >= 0:
            self.metrics.slot_transitions[result.state] += 1
            self.metrics.invariant_checks += len(SLOT_INVARIANTS)
        if result.outcome == "HALTED":
            self.metrics.invariant_failures += 1
        if isinstance(event, ExitIntent) and result.accepted:
            self._exit_wanted = True
        if k.flat:
            self._exit_wanted = False
        if isinstance(event, OrderFilled) and result.accepted and from_state in ENTRY_STATES | {"IDLE"}:
            self._entry_first_fill_ms.setdefault(k.slot.model.trade_seq, event.ts_ms)
        for command in result.commands:
            self._dispatch(command)
        return result

    def _dispatch(self, command: Command) -> None:
        self._dirty = True
        self.audit.command(command, self.now_ms)
        if isinstance(command, SetLeverage):
            self._pending.append(SetLeverageAction(command.symbol, command.leverage))
        elif isinstance(command, PlaceOrder):
            if command.role == "EXIT":
                self._exit_ids.add(command.client_id.value)
            self._absorb(self.router.place(command, self.now_ms))
        elif isinstance(command, CancelOrder):
            self._absorb(self.router.withdraw(command.client_id.value, command.symbol, self.now_ms))
        elif isinstance(command, RecordTrade):
            self._record_trade(command)

    def _record_trade(self, c: RecordTrade) -> None:
        opened = self._entry_first_fill_ms.get(c.trade_seq, self.now_ms)
        previous = self.trades.get(c.trade_seq)
        self.trades[c.trade_seq] = TradeRecord(c.trade_seq, c.symbol, c.side, c.qty_lots, c.entry_vwap_px,
                                               c.realised_pnl_usdt, c.fees_usdt, opened, self.now_ms)
        if previous is None:
            try:
                self.policy.on_trade_closed(c.symbol, c.realised_pnl_usdt - c.fees_usdt)
            except Exception:
                LOG.exception("policy_feedback_error")
        self._note_equity()
        # The slot frees only once the terminal record is durable (D12): TradeWritten follows the commit.
        self._after_commit.append(TradeWritten(self.now_ms, c.trade_seq))

    def _absorb(self, out: RouterOutput) -> None:
        if not (out.steps or out.actions or out.kernel_events):
            return
        self._version += 1
        self._dirty = True
        for rs in out.steps:
            step = rs.step
            self.metrics.router_transitions[step.dest] += 1
            if step.dest in FINAL_ROUTER_STATES and rs.working_id in self._exit_ids:
                self._exit_ids.discard(rs.working_id)
                if step.dest in ("FILLED", "WITHDRAWN"):
                    self._exit_wanted = False  # the exit completed, or the slot itself withdrew it
            self.metrics.invariant_checks += len(ROUTER_INVARIANTS)
            self.audit.router_step(rs.working_id, step, self.now_ms)
        for action in out.actions:
            if isinstance(action, SendOrder | CancelAttempt):
                self.audit.command(action, self.now_ms)
        self._pending.extend(out.actions)
        for event in out.kernel_events:
            self._kernel(event)

    def _commit(self) -> bool:
        self._last_commit_ns = self._perf_ns()
        try:
            self.audit.commit()
        except Exception as exc:
            self._dirty = True  # the rows are still pending: the next turn retries
            self.metrics.audit_failures += 1
            LOG.error("audit commit failed (%d so far): %s; no entry is sent until it is writable",
                      self.metrics.audit_failures, exc)
            return False
        return True

    def _note_equity(self) -> None:
        equity = self.kernel.equity_usdt
        m = self.metrics
        if equity > m.peak_equity_usdt:
            m.peak_equity_usdt = equity
        elif m.peak_equity_usdt - equity > m.max_drawdown_usdt:
            m.max_drawdown_usdt = m.peak_equity_usdt - equity

    # ------------------------------------------------------------------ summaries

    def summary(self) -> dict[str, Any]:
        trades = sorted(self.trades.values(), key=lambda t: t.trade_seq)
        gross = sum((t.realised_pnl_usdt for t in trades), ZERO)
        fees = sum((t.fees_usdt for t in trades), ZERO)
        wins = sum(1 for t in trades if t.net_usdt > 0)
        latencies = sorted(self.metrics.decision_to_order_ns)
        m = self.metrics
        k = self.kernel
        return {
            "trades": len(trades),
            "wins": wins,
            "win_rate": (wins / len(trades)) if trades else 0.0,
            "gross_pnl_usdt": str(gross),
            "fees_usdt": str(fees),
            "net_pnl_usdt": str(gross - fees),
            "funding_usdt": str(k.account.funding_usdt),
            "capital_usdt": str(k.capital_usdt),
            "equity_usdt": str(k.equity_usdt),
            "max_drawdown_usdt": str(m.max_drawdown_usdt),
            "slot_state": k.slot.state,
            "open_position": not k.flat,
            "halted": k.halted,
            "slot_transitions": dict(sorted(m.slot_transitions.items())),
            "router_transitions": dict(sorted(m.router_transitions.items())),
            "invariant_checks": m.invariant_checks,
            "invariant_failures": m.invariant_failures,
            "decisions": dict(sorted(m.decisions.items())),
            "orders_sent": m.orders_sent,
            "cancels_sent": m.cancels_sent,
            "place_refused": m.place_refused,
            "frames": m.frames,
            "bad_frames": m.bad_frames,
            "quotes": m.quotes,
            "kernel_refusals": dict(sorted(k.counters.items())),
            "audit_failures": m.audit_failures,
            "decision_to_order_p50_ms": _percentile_ms(latencies, 0.50),
            "decision_to_order_p99_ms": _percentile_ms(latencies, 0.99),
        }


def _percentile_ms(sorted_ns: Sequence[int], q: float) -> float:
    if not sorted_ns:
        return 0.0
    index = min(len(sorted_ns) - 1, max(0, round(q * (len(sorted_ns) - 1))))
    return sorted_ns[index] / 1e6


def _client_id(raw: str) -> ClientOrderId | None:
    try:
        return ClientOrderId(raw) if raw else None
    except ValueError:
        return None
