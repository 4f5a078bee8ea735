"""The kernel: a pure core driven by the generated slot machine.

`Kernel.handle(event) -> KernelResult` takes one intent or normalised venue event and returns the commands to
send. It never reads a clock (events carry `ts_ms`), a socket or a random source, and it never raises on bad
input: a refused event is an explicit outcome with a counted diagnostic and leaves the book unchanged.

Routing is by identity first (D3): a venue frame is mapped to the slot's order reference by client order id,
then by venue order id, and only then does the slot machine look at its state. Frames of orders that are not
ours never change the slot (D7).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from pink_fsm.fsm.machine import BoundViolation, EventParamError, InvariantViolation, Step, UnhandledEvent
from pink_fsm.generated.slot import TRANSITIONS as SLOT_ROWS
from pink_fsm.generated.slot import SlotMachine
from pink_fsm.kernel.account import ZERO, AccountProjection, FeeModel
from pink_fsm.kernel.events import (
    AccountUpdate,
    CancelIntent,
    CancelOrder,
    Command,
    Diagnostic,
    EnterIntent,
    ExitIntent,
    FundingFee,
    KernelEvent,
    KernelResult,
    MarkPrice,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRef,
    OrderRejected,
    PlaceOrder,
    RecordTrade,
    SetLeverage,
    TradeWritten,
    VenueTruth,
)
from pink_fsm.kernel.leverage import exchange_leverage
from pink_fsm.kernel.normaliser import BadFrame, normalise_frame
from pink_fsm.kernel.values import ClientOrderId, ContractSpec, Side, Symbol

LOG = logging.getLogger("pink_fsm.kernel")

MIN_SANE_PX = Decimal("0.00000001")  # a price below this is corrupt market data (D15)
NO_OWN_FILL_AGE_MS = 10**12  # "no own fill yet": far outside any hot window
MAX_SEEN_EXEC_IDS = 10_000  # bound on the execution-id dedup memory (oldest forgotten first)
FLAT_STATES = frozenset({"IDLE", "ORDER_REJECTED", "TRADE_TERMINAL_WRITTEN"})


@attrs.frozen
class KernelConfig:
    client_id_prefix: str = "pink"  # own orders are recognised by it (D7)
    session: str = "0"  # distinguishes client ids across restarts (letters and digits)
    strategy_max_leverage: Decimal = Decimal(8)
    leverage_boost: Decimal = Decimal(1)
    capital_tolerance_abs_usdt: Decimal = Decimal("0.05")
    capital_tolerance_rel: Decimal = Decimal("0.0001")
    unattributable: str = "freeze"  # a fill on our symbol we cannot attribute: "freeze" entries or "ignore"

    def __attrs_post_init__(self) -> None:
        ClientOrderId(f"{self.client_id_prefix}{self.session}_1")  # validates both
        if self.unattributable not in ("freeze", "ignore"):
            raise ValueError(f"unattributable: 'freeze' or 'ignore', got {self.unattributable!r}")


@attrs.define
class OwnOrder:
    ref: int
    client_id: ClientOrderId
    symbol: Symbol
    role: str
    trade_seq: int
    venue_id: str | None = None


_INTENTS = (EnterIntent, ExitIntent, CancelIntent, MarkPrice, TradeWritten)


class KernelInvariantViolation(AssertionError):
    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"kernel invariant {name} violated: {detail}")
        self.name = name


class Kernel:
    """One slot, one account. Build it with the contracts it may trade and the capital seeded from the venue."""

    def __init__(self, contracts: Mapping[Symbol, ContractSpec], seed_capital_usdt: Decimal,
                 config: KernelConfig | None = None, slot: SlotMachine | None = None) -> None:
        """`slot` lets the test and fuzz harness run the kernel on a machine compiled from a mutated spec."""
        if not contracts:
            raise ValueError("a kernel needs at least one contract")
        self.config = config or KernelConfig()
        self.contracts = dict(contracts)
        self.slot = slot or SlotMachine()
        self.account = AccountProjection(
            anchor_usdt=seed_capital_usdt,
            tolerance_abs_usdt=self.config.capital_tolerance_abs_usdt,
            tolerance_rel=self.config.capital_tolerance_rel,
            peak_equity_usdt=seed_capital_usdt,
        )
        # Each contract has its own published rates; calibration is learned per contract.
        self.fee_models = {s: FeeModel(c.taker_fee_rate, c.maker_fee_rate) for s, c in self.contracts.items()}
        self.orders: dict[int, OwnOrder] = {}
        self.by_client: dict[str, int] = {}
        self.by_venue: dict[str, int] = {}
        self.next_ref = 1
        self.trade_symbol: Symbol | None = None
        self.folded_trade_seq = 0
        self.last_own_fill_ms: int | None = None
        self.seen_exec_ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.counters: collections.Counter[str] = collections.Counter()
        self.halted: str = ""
        self._handlers: dict[type, Callable[[Any], KernelResult]] = {
            MarkPrice: self._mark,
            OrderFilled: self._fill,
            OrderAccepted: self._accepted,
            OrderRejected: self._rejected,
            OrderCancelled: self._cancelled,
            EnterIntent: self._enter,
            ExitIntent: self._exit,
            CancelIntent: self._cancel,
            AccountUpdate: self._account_update,
            FundingFee: self._funding,
            TradeWritten: self._trade_written,
        }

    # ------------------------------------------------------------------ entry points

    def handle(self, event: KernelEvent) -> KernelResult:
        """Apply one event; never raises. Invariant violations halt new entries (the book needs a human).
        Every outcome other than OK is counted once in `counters`."""
        result = self._apply(event)
        if result.outcome != "OK":
            self.counters[result.outcome] += 1
        return result

    def _apply(self, event: KernelEvent) -> KernelResult:
        handler = self._handlers.get(type(event))
        if handler is None:
            return self._refuse("UNKNOWN_EVENT", f"{type(event).__name__} is not a kernel event")
        refused = "INVALID_INTENT" if isinstance(event, _INTENTS) else "BAD_FRAME"
        ts_ms = getattr(event, "ts_ms", None)
        if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or ts_ms < 0:
            return self._refuse(refused, f"ts_ms: expected a non-negative integer, got {ts_ms!r}")
        try:
            result = handler(event)
            self._check_invariants()
        except (InvariantViolation, KernelInvariantViolation) as exc:
            self.halted = str(exc)
            LOG.critical("kernel halted, entries refused until a human looks: %s", exc)
            return self._refuse("HALTED", str(exc))
        except (BoundViolation, EventParamError) as exc:
            # Both are raised before anything is assigned: the book is unchanged.
            return self._refuse(refused, str(exc))
        except UnhandledEvent as exc:
            return self._refuse("UNHANDLED", str(exc))
        except Exception as exc:  # a bug, never a crash of the trading loop
            self.halted = f"internal error: {exc!r}"
            LOG.exception("kernel_error")
            return self._refuse("KERNEL_ERROR", repr(exc))
        return result

    def handle_frame(self, frame: object) -> list[KernelResult]:
        """Normalise a raw venue frame and apply its events; a malformed frame is one BAD_FRAME result."""
        try:
            normalised = normalise_frame(frame)
        except BadFrame as exc:
            self.counters["BAD_FRAME"] += 1
            return [self._refuse("BAD_FRAME", str(exc))]
        if not normalised.events:
            self.counters["IGNORED_FRAME"] += 1
        return [self.handle(event) for event in normalised.events]

    # ------------------------------------------------------------------ views

    @property
    def live_net_usdt(self) -> Decimal:
        """The current (not yet folded) trade's realised PnL minus fees."""
        if self.slot.model.trade_seq == self.folded_trade_seq:
            return ZERO
        return self.slot.model.realised_pnl_usdt - self.slot.model.fees_usdt

    @property
    def capital_usdt(self) -> Decimal:
        return self.account.capital(self.live_net_usdt)

    @property
    def unrealised_pnl_usdt(self) -> Decimal:
        """side x open lots x (mark - entry VWAP), per lot prices; never scaled by leverage (D1)."""
        m = self.slot.model
        open_lots = m.entry_filled_lots - m.exited_lots
        if open_lots <= 0 or m.mark_px <= 0:
            return ZERO
        sign = 1 if m.side is Side.LONG else -1
        return sign * (open_lots * m.mark_px - open_lots * m.entry_cost_usdt / m.entry_filled_lots)

    def fold_trade(self, trade_seq: int, net_usdt: Decimal) -> None:
        """A trade is over for good: its net moves into the closed total, exactly once (D5)."""
        if trade_seq > self.folded_trade_seq:
            self.account.fold_trade(net_usdt)
            self.folded_trade_seq = trade_seq

    @property
    def equity_usdt(self) -> Decimal:
        return self.capital_usdt + self.unrealised_pnl_usdt

    @property
    def flat(self) -> bool:
        m = self.slot.model
        return self.slot.state in FLAT_STATES and m.entry_filled_lots == m.exited_lots

    # ------------------------------------------------------------------ intents

    def _enter(self, e: EnterIntent) -> KernelResult:
        reason = self._unsafe_entry(e)
        if reason:
            return self._refuse("INVALID_INTENT", reason)
        contract = self.contracts[e.symbol]
        leverage = exchange_leverage(e.conviction, venue_max=contract.max_leverage, boost=self.config.leverage_boost,
                                     strategy_max=self.config.strategy_max_leverage)
        lots = contract.lots_floor(e.qty)
        px_lot = e.px_ref * contract.lot_size  # the spec prices whole lots
        if e.qty * e.px_ref > self.capital_usdt * leverage:
            return self._refuse("INVALID_INTENT", f"notional {e.qty * e.px_ref} exceeds capital x leverage "
                                                  f"({self.capital_usdt} x {leverage}) (no_leverage_inflation)")
        if self.halted:
            return self._refuse("HALTED", f"entries refused: {self.halted}")
        ratios = [*e.leg_ratios, Decimal(0), Decimal(0)]
        ref = self.next_ref
        age_ms = NO_OWN_FILL_AGE_MS if self.last_own_fill_ms is None else max(0, e.ts_ms - self.last_own_fill_ms)
        previous_seq, previous_net = self.slot.model.trade_seq, self.live_net_usdt
        step = self.slot.enter(order=ref, new_side=e.side, qty_lots=lots, px=px_lot, new_leverage=leverage,
                               exit_legs=e.exit_legs, new_leg_ratio_0=ratios[0], new_leg_ratio_1=ratios[1],
                               probe_ok=e.venue.probe_ok, venue_position_lots=e.venue.position_lots,
                               own_fill_age_ms=age_ms)
        if step.outcome != "OK":
            return self._result(step, ())
        self.fold_trade(previous_seq, previous_net)
        self.trade_symbol = e.symbol
        self.next_ref += 1
        commands: list[Command] = [SetLeverage(e.symbol, leverage)]
        commands.extend(self._commands(step))
        # The reference price is the first mark of the new trade: a mark left from another symbol must never
        # value this position.
        self.slot.mark_price(px=px_lot)
        return self._result(step, tuple(commands))

    def _unsafe_entry(self, e: EnterIntent) -> str:
        if not isinstance(e.symbol, Symbol) or e.symbol not in self.contracts:
            return f"no contract spec for {e.symbol}"
        if not isinstance(e.side, Side) or e.side is Side.NONE:
            return f"side must be LONG or SHORT, got {e.side!r}"
        if not isinstance(e.venue, VenueTruth) or not isinstance(e.venue.probe_ok, bool) \
                or isinstance(e.venue.position_lots, bool) or not isinstance(e.venue.position_lots, int) \
                or e.venue.position_lots < 0:
            return f"venue truth must be (probe_ok: bool, position_lots: int >= 0), got {e.venue!r}"
        if isinstance(e.exit_legs, bool) or not isinstance(e.exit_legs, int):
            return f"exit_legs must be an integer, got {e.exit_legs!r}"
        for ratio in e.leg_ratios:
            if not isinstance(ratio, Decimal) or not ratio.is_finite() or not 0 < ratio < 1:
                return f"leg ratios must be Decimals in (0, 1), got {e.leg_ratios!r}"
        capital = self.capital_usdt
        if not capital.is_finite() or capital <= 0:
            return f"capital {capital} is not positive"
        for name, value in (("price", e.px_ref), ("qty", e.qty), ("conviction", e.conviction)):
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                return f"{name} {value!r} is not a positive finite number"
        if e.px_ref < MIN_SANE_PX:
            return f"price {e.px_ref} is below the sane floor {MIN_SANE_PX} (corrupt market data, D15)"
        try:
            lots = self.contracts[e.symbol].lots_floor(e.qty)
        except ValueError as exc:
            return f"qty: {exc}"
        if lots < 1:
            return f"qty {e.qty} is less than one lot ({self.contracts[e.symbol].lot_size})"
        if not 1 <= e.exit_legs <= 3 or len(e.leg_ratios) > 2:
            return f"exit legs {e.exit_legs} with ratios {e.leg_ratios}: 1-3 legs, at most 2 ratios"
        return ""

    def _exit(self, e: ExitIntent) -> KernelResult:
        lots = 0  # a missing or malformed size closes the active leg (D15)
        if isinstance(e.qty, Decimal) and e.qty.is_finite() and e.qty > 0 and self.trade_symbol:
            try:
                lots = self.contracts[self.trade_symbol].lots_floor(e.qty)
            except ValueError:
                lots = 0
            if lots == 0:
                return self._refuse("INVALID_INTENT", f"exit qty {e.qty} is less than one lot; send no qty to "
                                                      f"close the active leg")
            m = self.slot.model
            lots = min(lots, max(m.entry_filled_lots - m.exited_lots, 1))  # the slot caps it too (D15)
        ref = self.next_ref
        step = self.slot.exit(order=ref, qty_lots=lots)
        if step.outcome == "OK":
            self.next_ref += 1
        return self._result(step, self._commands(step))

    def _cancel(self, e: CancelIntent) -> KernelResult:
        m = self.slot.model
        ref = m.entry_order if e.role == "ENTRY" else m.exit_order if e.role == "EXIT" else -1
        if ref < 0:
            return self._refuse("INVALID_INTENT", f"cancel role must be ENTRY or EXIT, got {e.role!r}")
        step = self.slot.cancel(order=ref)
        return self._result(step, self._commands(step))

    def _mark(self, e: MarkPrice) -> KernelResult:
        if self.trade_symbol is None or e.symbol != self.trade_symbol:
            return KernelResult("OTHER_SYMBOL", state=self.slot.state)
        if not isinstance(e.px, Decimal) or not e.px.is_finite() or e.px <= 0:
            return self._refuse("INVALID_INTENT", f"mark price px must be a positive finite Decimal, got {e.px!r}")
        step = self.slot.mark_price(px=e.px * self.contracts[e.symbol].lot_size)
        self.account.note_equity(self.equity_usdt)
        return self._result(step, ())

    def _trade_written(self, e: TradeWritten) -> KernelResult:
        if e.trade_seq != self.slot.model.trade_seq:
            current = self.slot.model.trade_seq
            return self._refuse("STALE_EVENT", f"trade {e.trade_seq} is not the slot's trade {current}")
        step = self.slot.trade_written()
        return self._result(step, ())

    # ------------------------------------------------------------------ venue events

    def _resolve(self, ref: OrderRef) -> tuple[int, str]:
        """(order reference, attribution) of a venue frame: identity first (D3, D7)."""
        own_prefix = self.config.client_id_prefix
        if ref.client_id is not None:
            number = self.by_client.get(ref.client_id.value)
            if number is not None:
                if ref.venue_id is not None and self.orders[number].venue_id is None:
                    self.orders[number].venue_id = ref.venue_id.value
                    self.by_venue[ref.venue_id.value] = number
                return number, "own"
            return 0, "unknown_own" if ref.client_id.value.startswith(own_prefix) else "foreign"
        if ref.venue_id is not None and ref.venue_id.value in self.by_venue:
            return self.by_venue[ref.venue_id.value], "own"
        own_symbols = {o.symbol for o in self.orders.values()}
        return 0, "unattributable" if ref.symbol in own_symbols else "foreign"

    def _attribution_diagnostics(self, attribution: str, ref: OrderRef) -> list[Diagnostic]:
        if attribution == "own":
            return []
        text = f"{ref.symbol} client={ref.client_id} venue={ref.venue_id}"
        if attribution in ("unknown_own", "unattributable") and self.config.unattributable == "freeze":
            # Venue truth now differs from ours: no new exposure until a reconcile explains it.
            self.slot.freeze_entries()
            self.account.mismatch = True
            return [Diagnostic(attribution.upper(), f"{text}; entries frozen until reconciled")]
        return [Diagnostic(attribution.upper(), text)]

    def _fill(self, e: OrderFilled) -> KernelResult:
        if e.exec_id.value in self.seen_exec_ids:
            return KernelResult("DUPLICATE_EVENT", diagnostics=(Diagnostic("DUPLICATE_EXEC_ID", e.exec_id.value),),
                                state=self.slot.state)
        # Validate first: a refused frame must leave no trace (no routing learned, no freeze).
        contract = self.contracts.get(e.ref.symbol)
        cum_lots = 0
        if contract is not None:
            try:
                cum_lots = contract.lots(e.cum_qty)
            except ValueError as exc:
                return self._refuse("BAD_FRAME", f"z (cumulative filled qty) of {e.exec_id.value}: {exc}")
        ref, attribution = self._resolve(e.ref)
        if ref and contract is None:
            return self._refuse("BAD_FRAME", f"fill on {e.ref.symbol}: no contract spec")
        diagnostics = self._attribution_diagnostics(attribution, e.ref)
        fees = self.fee_models.get(e.ref.symbol)
        m = self.slot.model
        is_entry = ref != 0 and ref == m.entry_order
        before_fee = m.entry_fee_usdt if is_entry else m.exit_order_fee_usdt
        before_quote = m.entry_cost_usdt if is_entry else m.exit_order_cost_usdt
        fee = e.cum_fee_usdt
        if fee is None:
            fee = fees.predict(e.cum_quote_usdt, e.is_maker) if fees is not None else Decimal(0)
        step = self.slot.fill(order=ref, cum_lots=cum_lots, cum_quote_usdt=e.cum_quote_usdt, cum_fee_usdt=fee)
        if step.outcome == "OK":
            self._remember_exec(e.exec_id.value)
            self.last_own_fill_ms = e.ts_ms
            if e.cum_fee_usdt is not None and fees is not None:
                fees.observe(e.cum_quote_usdt - before_quote, fee - before_fee, e.is_maker)
        return self._result(step, self._commands(step), diagnostics)

    def _remember_exec(self, exec_id: str) -> None:
        self.seen_exec_ids[exec_id] = None
        if len(self.seen_exec_ids) > MAX_SEEN_EXEC_IDS:
            self.seen_exec_ids.popitem(last=False)

    def _accepted(self, e: OrderAccepted) -> KernelResult:
        ref, attribution = self._resolve(e.ref)
        step = self.slot.ack(order=ref)
        return self._result(step, (), self._attribution_diagnostics(attribution, e.ref) if ref == 0 else [])

    def _rejected(self, e: OrderRejected) -> KernelResult:
        ref, _ = self._resolve(e.ref)
        step = self.slot.reject(order=ref)
        return self._result(step, (), [Diagnostic("VENUE_REJECT", e.reason)] if ref else [])

    def _cancelled(self, e: OrderCancelled) -> KernelResult:
        ref, _ = self._resolve(e.ref)
        step = self.slot.expired(order=ref) if e.expired else self.slot.cancelled(order=ref)
        return self._result(step, self._commands(step))

    def _account_update(self, e: AccountUpdate) -> KernelResult:
        if e.wallet_usdt is not None and (not isinstance(e.wallet_usdt, Decimal) or not e.wallet_usdt.is_finite()):
            return self._refuse("BAD_FRAME", f"wallet balance must be a finite Decimal, got {e.wallet_usdt!r}")
        live_ok = self.flat and not self._live_orders()
        verdict = self.account.reconcile(e.wallet_usdt, self.live_net_usdt, flat=live_ok)
        detail = f"wallet={verdict.wallet_usdt} capital={verdict.capital_usdt} delta={verdict.delta_usdt}"
        if verdict.status == "IGNORED_NO_BALANCE":
            return KernelResult("IGNORED_NO_BALANCE", diagnostics=(Diagnostic("NO_BALANCE_FRAME", detail),),
                                state=self.slot.state)
        frozen = self.slot.model.entries_frozen
        if verdict.status == "MISMATCH" and not frozen:
            self.slot.freeze_entries()
        elif verdict.status in ("OK", "REANCHORED") and frozen:
            self.slot.unfreeze_entries()
        return KernelResult("OK" if verdict.status != "MISMATCH" else "CAPITAL_MISMATCH",
                            diagnostics=(Diagnostic(verdict.status, detail),), state=self.slot.state)

    def _funding(self, e: FundingFee) -> KernelResult:
        if not isinstance(e.amount_usdt, Decimal) or not e.amount_usdt.is_finite():
            return self._refuse("BAD_FRAME", f"funding amount must be a finite Decimal, got {e.amount_usdt!r}")
        self.account.funding_usdt += e.amount_usdt
        return KernelResult("OK", state=self.slot.state)

    # ------------------------------------------------------------------ commands and results

    def _live_orders(self) -> bool:
        return self.slot.state not in FLAT_STATES | {"POSITION_OPEN", "PARTIALLY_CLOSED", "CLOSED", "EXIT_REJECTED"}

    def _new_order(self, ref: int, role: str) -> OwnOrder:
        assert self.trade_symbol is not None
        client = ClientOrderId(f"{self.config.client_id_prefix}{self.config.session}_{ref}")
        order = OwnOrder(ref, client, self.trade_symbol, role, self.slot.model.trade_seq)
        self.orders[ref] = order
        self.by_client[client.value] = ref
        return order

    def _commands(self, step: Step) -> tuple[Command, ...]:
        out: list[Command] = []
        for name, args in step.emitted:
            if name == "PLACE_ORDER":
                role = args["role"].name  # by name: a machine compiled from a mutated spec has its own enums
                order = self._new_order(args["order"], role)
                side = args["side"]
                buy = (side is Side.LONG) == (role == "ENTRY")
                contract = self.contracts[order.symbol]
                out.append(PlaceOrder(order.client_id, order.symbol, role, "BUY" if buy else "SELL",
                                      contract.qty(args["qty_lots"]), args["qty_lots"], args["reduce_only"],
                                      order.trade_seq))
            elif name == "CANCEL_ORDER":
                order = self.orders[args["order"]]
                out.append(CancelOrder(order.client_id, order.symbol))
            elif name == "TRADE_CLOSED":
                m = self.slot.model
                assert self.trade_symbol is not None
                lot = self.contracts[self.trade_symbol].lot_size
                out.append(RecordTrade(args["trade_seq"], self.trade_symbol, m.side, m.entry_filled_lots,
                                       m.entry_cost_usdt / (m.entry_filled_lots * lot),
                                       args["realised_pnl_usdt"], args["fees_usdt"]))
        return tuple(out)

    def _result(self, step: Step, commands: tuple[Command, ...],
                diagnostics: list[Diagnostic] | tuple[Diagnostic, ...] = ()) -> KernelResult:
        if step.outcome != "OK" and not diagnostics:
            # The slot refused: say why, with the spec row's own reason.
            row = SLOT_ROWS[step.transition_id] if 0 <= step.transition_id < len(SLOT_ROWS) else None
            diagnostics = (Diagnostic(step.outcome, row.doc if row else step.outcome),)
        return KernelResult(step.outcome, commands, tuple(diagnostics), step.transition_id, step.dest)

    def _refuse(self, code: str, detail: str) -> KernelResult:
        """A refusal made by the kernel itself; `handle` counts it (once)."""
        # Duplicates and stale reports are routine on a live stream; malformed input is for an operator.
        level = logging.INFO if code in ("STALE_EVENT", "DUPLICATE_EVENT") else logging.WARNING
        LOG.log(level, "kernel refused an event: %s: %s", code, detail)
        return KernelResult(code, diagnostics=(Diagnostic(code, detail),), state=self.slot.state)

    # ------------------------------------------------------------------ invariants

    def _check_invariants(self) -> None:
        m = self.slot.model
        for name, ref in (("entry_order", m.entry_order), ("exit_order", m.exit_order)):
            if ref >= self.next_ref:
                raise KernelInvariantViolation("fill_identity", f"slot {name} #{ref} was never allocated")
        if self.account.mismatch and not m.entries_frozen and self.config.unattributable == "freeze":
            raise KernelInvariantViolation("capital_consistency", "capital mismatch but entries not frozen")
        if self.folded_trade_seq > m.trade_seq:
            raise KernelInvariantViolation("single_book", "a trade was folded into capital before it started")
