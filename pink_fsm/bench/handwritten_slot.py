"""The slot machine written by hand: a plain `transitions.Machine`, and a dict-dispatch baseline.

This is the yardstick of `pink bench --area codegen`. It implements the transition table documented in
docs/machines/slot.md the way a careful engineer would write it without a compiler: one model class with
typed attributes, guards and effects as model methods over `Decimal` money and `int` lots, and the table
written once (`ROWS`) in the order its rows are tried. It deliberately does not import the generated
module or read the spec, so the benchmark compares two independent implementations of one table.

* `HandwrittenSlotMachine` feeds `ROWS` to `transitions.Machine` the idiomatic way: callbacks are model
  method names, event parameters arrive as keyword arguments (`send_event=False`), a row that keeps the
  state is an internal transition (`dest=None`, as the generated code now declares them too), no auto
  transitions.
* `DictSlotMachine` is the floor: `TABLE[(state, event)]` lists the same rows with the same methods,
  and the first row whose guard holds fires.

Every row has exactly one action: an effect that books the event (outcome OK), `accept` (OK, nothing to
book) or a `refuse_*` / `ignore_*` method that only records the outcome. `row_id` is the row's number
in docs/machines/slot.md.

Money: additions, subtractions and products use the default 28-digit context, which holds every value
a slot books at realistic prices and sizes exactly. The entry VWAP is the one rounding the table asks
for (half-even to 12 places); it is divided in a 60-digit context first so the quotient is rounded
once, not twice.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final, NamedTuple

from transitions import Machine

from pink_fsm.fsm.types import NO_ORDER, SIDE_SIGN, Side

__all__ = [
    "ROWS",
    "STATES",
    "TABLE",
    "VARIABLES",
    "DictSlotMachine",
    "HandwrittenSlotMachine",
    "NoRowMatches",
    "Outcome",
    "Output",
    "Role",
    "SlotBook",
]

MAX_EXCHANGE_LEVERAGE: Final = 125
HOT_WINDOW_MS: Final = 5000
MIN_SANE_PX: Final = Decimal("0.00000001")
MAX_EXIT_LEGS: Final = 3
ZERO: Final = Decimal(0)
_VWAP_QUANTUM: Final = Decimal("1e-12")
_WIDE: Final = Context(prec=60, rounding=ROUND_HALF_EVEN)

Output = tuple[str, dict[str, Any]]


class Role(enum.Enum):
    ENTRY = "ENTRY"
    EXIT = "EXIT"


class Outcome(enum.StrEnum):
    OK = "OK"
    INVALID_INTENT = "INVALID_INTENT"
    ENTRY_FROZEN = "ENTRY_FROZEN"
    VENUE_NOT_FLAT = "VENUE_NOT_FLAT"
    SLOT_BUSY = "SLOT_BUSY"
    NO_OPEN_POSITION = "NO_OPEN_POSITION"
    EXIT_IN_PROGRESS = "EXIT_IN_PROGRESS"
    NO_LIVE_ORDER = "NO_LIVE_ORDER"
    DUPLICATE_EVENT = "DUPLICATE_EVENT"
    STALE_EVENT = "STALE_EVENT"
    FOREIGN_ORDER = "FOREIGN_ORDER"
    INVALID_EVENT = "INVALID_EVENT"


IDLE: Final = "IDLE"
ENTRY_SUBMITTED: Final = "ENTRY_SUBMITTED"
ENTRY_WORKING: Final = "ENTRY_WORKING"
ENTRY_PARTIAL: Final = "ENTRY_PARTIAL"
ENTRY_CANCELLING: Final = "ENTRY_CANCELLING"
POSITION_OPEN: Final = "POSITION_OPEN"
EXIT_REQUESTED: Final = "EXIT_REQUESTED"
EXIT_SENT: Final = "EXIT_SENT"
EXIT_ACKED: Final = "EXIT_ACKED"
EXIT_WORKING: Final = "EXIT_WORKING"
EXIT_CANCELLING: Final = "EXIT_CANCELLING"
PARTIALLY_CLOSED: Final = "PARTIALLY_CLOSED"
CLOSED: Final = "CLOSED"
TRADE_TERMINAL_WRITTEN: Final = "TRADE_TERMINAL_WRITTEN"
ORDER_REJECTED: Final = "ORDER_REJECTED"
EXIT_REJECTED: Final = "EXIT_REJECTED"

STATES: Final[tuple[str, ...]] = (
    IDLE, ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING, POSITION_OPEN, EXIT_REQUESTED,
    EXIT_SENT, EXIT_ACKED, EXIT_WORKING, EXIT_CANCELLING, PARTIALLY_CLOSED, CLOSED, TRADE_TERMINAL_WRITTEN,
    ORDER_REJECTED, EXIT_REJECTED,
)
INITIAL: Final = IDLE

VARIABLES: Final[tuple[str, ...]] = (
    "side", "leverage", "entries_frozen", "trade_seq", "entry_order", "entry_target_lots", "entry_filled_lots",
    "entry_cost_usdt", "entry_fee_usdt", "exit_order", "exit_wanted_lots", "exit_target_lots", "exit_filled_lots",
    "exit_order_cost_usdt", "exit_order_fee_usdt", "prev_exit_order", "prev_exit_target_lots",
    "prev_exit_filled_lots", "prev_exit_cost_usdt", "prev_exit_fee_usdt", "exited_lots", "exit_cost_usdt",
    "closed_basis_usdt",
    "realised_pnl_usdt", "fees_usdt", "mark_px", "leg_count", "leg_ratio_0", "leg_ratio_1", "active_leg",
    "leg_exited_lots",
)
"""The slot's variables (docs/machines/slot.md), all attributes of `SlotBook`."""


def _sizing_is_sane(new_side: Side, qty_lots: int, px: Decimal, new_leverage: int, exit_legs: int,
                    new_leg_ratio_0: Decimal, new_leg_ratio_1: Decimal) -> bool:
    """Side, lots, price, leverage and exit legs of an entry are usable (D10, D15)."""
    if new_side is Side.NONE or qty_lots <= 0 or px < MIN_SANE_PX:
        return False
    if not 1 <= new_leverage <= MAX_EXCHANGE_LEVERAGE or not 1 <= exit_legs <= MAX_EXIT_LEGS:
        return False
    if exit_legs >= 2 and not ZERO < new_leg_ratio_0 < 1:
        return False
    return exit_legs < 3 or (new_leg_ratio_1 > 0 and new_leg_ratio_0 + new_leg_ratio_1 < 1)


def _venue_is_flat(probe_ok: bool, venue_position_lots: int, own_fill_age_ms: int) -> bool:
    """The venue provably holds nothing: probe answered, no position, no own fill in the hot window (D8)."""
    return probe_ok and venue_position_lots == 0 and own_fill_age_ms >= HOT_WINDOW_MS


class SlotBook:
    """The slot's book: the variables of docs/machines/slot.md plus the last outcome and the outputs.

    Guards return bool, effects book the event and set `outcome`; both take the event's parameters as
    keyword arguments, so `transitions` and the dict dispatcher call the very same methods.
    """

    state: str
    trigger: Callable[..., bool]  # bound by transitions

    def __init__(self) -> None:
        self.state = INITIAL
        self.side: Side = Side.NONE
        self.leverage: int = 0
        self.entries_frozen: bool = False
        self.trade_seq: int = 0
        self.entry_order: int = NO_ORDER
        self.entry_target_lots: int = 0
        self.entry_filled_lots: int = 0
        self.entry_cost_usdt: Decimal = ZERO
        self.entry_fee_usdt: Decimal = ZERO
        self.exit_order: int = NO_ORDER
        self.exit_wanted_lots: int = 0
        self.exit_target_lots: int = 0
        self.exit_filled_lots: int = 0
        self.exit_order_cost_usdt: Decimal = ZERO
        self.exit_order_fee_usdt: Decimal = ZERO
        self.prev_exit_order: int = NO_ORDER
        self.prev_exit_target_lots: int = 0
        self.prev_exit_filled_lots: int = 0
        self.prev_exit_cost_usdt: Decimal = ZERO
        self.prev_exit_fee_usdt: Decimal = ZERO
        self.exited_lots: int = 0
        self.exit_cost_usdt: Decimal = ZERO
        self.closed_basis_usdt: Decimal = ZERO
        self.realised_pnl_usdt: Decimal = ZERO
        self.fees_usdt: Decimal = ZERO
        self.mark_px: Decimal = ZERO
        self.leg_count: int = 1
        self.leg_ratio_0: Decimal = ZERO
        self.leg_ratio_1: Decimal = ZERO
        self.active_leg: int = 0
        self.leg_exited_lots: int = 0
        self.outcome: str = Outcome.OK
        self.outbox: list[Output] = []

    # ------------------------------------------------------------------ derived figures

    @property
    def open_lots(self) -> int:
        return self.entry_filled_lots - self.exited_lots

    @property
    def entry_vwap_px(self) -> Decimal:
        """Volume-weighted entry price, half-even to 12 places (D4)."""
        if self.entry_filled_lots <= 0:
            return ZERO
        quotient = _WIDE.divide(self.entry_cost_usdt, self.entry_filled_lots)
        return quotient.quantize(_VWAP_QUANTUM, rounding=ROUND_HALF_EVEN, context=_WIDE)

    @property
    def open_avg_px(self) -> Decimal:
        """Average entry price of the lots still open: the entry quote at the VWAP less the basis already closed,
        per open lot (the VWAP itself unless an entry fill was booked after an exit), half-even to 12 places."""
        if self.open_lots <= 0:
            return ZERO
        quotient = _WIDE.divide(self.entry_filled_lots * self.entry_vwap_px - self.closed_basis_usdt, self.open_lots)
        return quotient.quantize(_VWAP_QUANTUM, rounding=ROUND_HALF_EVEN, context=_WIDE)

    @property
    def leg_goal_lots(self) -> int:
        """Lots a non-last leg closes in all: its share of the entry, at least 1."""
        ratio = self.leg_ratio_0 if self.active_leg == 0 else self.leg_ratio_1
        return max(1, math.floor(self.entry_filled_lots * ratio))

    @property
    def active_leg_lots(self) -> int:
        """Lots the active exit leg still has to close: its goal less what it already closed (at most what is
        open); the last leg closes whatever is open."""
        if self.active_leg >= self.leg_count - 1:
            return self.open_lots
        return min(self.open_lots, self.leg_goal_lots - self.leg_exited_lots)

    def _requested_exit_lots(self) -> int:
        """Size of an exit requested while the entry was live, against the final open qty."""
        if self.exit_wanted_lots > 0:
            return min(self.exit_wanted_lots, self.open_lots)
        return self.open_lots

    # ------------------------------------------------------------------ guards: ENTER

    def can_enter(self, *, order: int, new_side: Side, qty_lots: int, px: Decimal, new_leverage: int,
                  exit_legs: int, new_leg_ratio_0: Decimal, new_leg_ratio_1: Decimal, probe_ok: bool,
                  venue_position_lots: int, own_fill_age_ms: int) -> bool:
        return (not self.entries_frozen
                and _venue_is_flat(probe_ok, venue_position_lots, own_fill_age_ms)
                and order != NO_ORDER and order != self.entry_order and order != self.exit_order
                and _sizing_is_sane(new_side, qty_lots, px, new_leverage, exit_legs, new_leg_ratio_0,
                                    new_leg_ratio_1))

    def entries_are_frozen(self, **_: object) -> bool:
        return self.entries_frozen

    def venue_not_flat(self, *, probe_ok: bool, venue_position_lots: int, own_fill_age_ms: int,
                       **_: object) -> bool:
        return not _venue_is_flat(probe_ok, venue_position_lots, own_fill_age_ms)

    # ------------------------------------------------------------------ guards: order identity

    def is_unfilled_entry_order(self, *, order: int) -> bool:
        return order == self.entry_order and self.entry_filled_lots == 0

    def is_unfilled_exit_order(self, *, order: int) -> bool:
        return order == self.exit_order and self.exit_filled_lots == 0

    def is_entry_order(self, *, order: int) -> bool:
        return order == self.entry_order

    def is_exit_order(self, *, order: int) -> bool:
        return order == self.exit_order

    def is_live_entry_order(self, *, order: int) -> bool:
        return order == self.entry_order and order != NO_ORDER

    def is_live_exit_order(self, *, order: int) -> bool:
        return order == self.exit_order and order != NO_ORDER

    def entry_ended_unfilled(self, *, order: int) -> bool:
        return order == self.entry_order and self.entry_filled_lots == 0

    def entry_ended_part_filled(self, *, order: int) -> bool:
        return order == self.entry_order and self.entry_filled_lots > 0

    def exit_ended_unfilled(self, *, order: int) -> bool:
        return order == self.exit_order and self.exited_lots == 0

    def exit_ended_part_filled(self, *, order: int) -> bool:
        return order == self.exit_order and self.exited_lots > 0

    # ------------------------------------------------------------------ guards: EXIT

    def can_exit(self, *, order: int, qty_lots: int) -> bool:
        return (order != NO_ORDER and order != self.entry_order and order != self.exit_order
                and order != self.prev_exit_order and self.open_lots > 0)

    def can_request_exit(self, *, order: int, qty_lots: int) -> bool:
        return order != NO_ORDER and order != self.entry_order and self.entry_filled_lots > 0

    # ------------------------------------------------------------------ guards: FILL

    def _is_new_entry_fill(self, order: int, cum_lots: int, cum_quote_usdt: Decimal) -> bool:
        return (order == self.entry_order and order != NO_ORDER and cum_lots > self.entry_filled_lots
                and cum_quote_usdt >= self.entry_cost_usdt)

    def is_entry_fill(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> bool:
        return self._is_new_entry_fill(order, cum_lots, cum_quote_usdt) and cum_lots <= self.entry_target_lots

    def is_entry_fill_complete(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                               cum_fee_usdt: Decimal) -> bool:
        return self._is_new_entry_fill(order, cum_lots, cum_quote_usdt) and cum_lots == self.entry_target_lots

    def _exit_fill_lots_after(self, order: int, cum_lots: int, cum_quote_usdt: Decimal) -> int | None:
        """Lots the trade will have exited once this exit fill books; None if it is not a new exit fill."""
        if (order != self.exit_order or order == NO_ORDER or order == self.entry_order
                or not self.exit_filled_lots < cum_lots <= self.exit_target_lots
                or cum_quote_usdt < self.exit_order_cost_usdt):
            return None
        return self.exited_lots + (cum_lots - self.exit_filled_lots)

    def is_exit_fill_partial(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                             cum_fee_usdt: Decimal) -> bool:
        exited_lots = self._exit_fill_lots_after(order, cum_lots, cum_quote_usdt)
        return exited_lots is not None and exited_lots < self.entry_filled_lots and cum_lots < self.exit_target_lots

    def is_exit_fill_order_done(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                                cum_fee_usdt: Decimal) -> bool:
        exited_lots = self._exit_fill_lots_after(order, cum_lots, cum_quote_usdt)
        return exited_lots is not None and exited_lots < self.entry_filled_lots and cum_lots == self.exit_target_lots

    def is_exit_fill_closing(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                             cum_fee_usdt: Decimal) -> bool:
        exited_lots = self._exit_fill_lots_after(order, cum_lots, cum_quote_usdt)
        return exited_lots is not None and exited_lots == self.entry_filled_lots

    def _prev_exit_fill_lots_after(self, order: int, cum_lots: int, cum_quote_usdt: Decimal) -> int | None:
        """Lots the trade will have exited once this late report of the previous exit order books (D3, D14)."""
        if (order != self.prev_exit_order or order == NO_ORDER or order == self.entry_order
                or order == self.exit_order or not self.prev_exit_filled_lots < cum_lots <= self.prev_exit_target_lots
                or cum_quote_usdt < self.prev_exit_cost_usdt):
            return None
        return self.exited_lots + (cum_lots - self.prev_exit_filled_lots)

    def is_prev_exit_fill(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> bool:
        exited_lots = self._prev_exit_fill_lots_after(order, cum_lots, cum_quote_usdt)
        return exited_lots is not None and exited_lots < self.entry_filled_lots

    def is_prev_exit_fill_closing(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                                  cum_fee_usdt: Decimal) -> bool:
        exited_lots = self._prev_exit_fill_lots_after(order, cum_lots, cum_quote_usdt)
        return exited_lots is not None and exited_lots == self.entry_filled_lots

    def is_entry_fee_settlement(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                                cum_fee_usdt: Decimal) -> bool:
        """The entry's last execution reported again with its actual fee."""
        return (order != NO_ORDER and order == self.entry_order and 0 < cum_lots == self.entry_filled_lots
                and cum_quote_usdt == self.entry_cost_usdt and cum_fee_usdt != self.entry_fee_usdt)

    def is_exit_fee_settlement(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                               cum_fee_usdt: Decimal) -> bool:
        """The exit order's last execution reported again with its actual fee."""
        return (order != NO_ORDER and order == self.exit_order and order != self.entry_order
                and 0 < cum_lots == self.exit_filled_lots and cum_quote_usdt == self.exit_order_cost_usdt
                and cum_fee_usdt != self.exit_order_fee_usdt)

    def is_entry_duplicate(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                           cum_fee_usdt: Decimal) -> bool:
        return order != NO_ORDER and order == self.entry_order and cum_lots <= self.entry_filled_lots

    def is_exit_duplicate(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> bool:
        """An already booked report of the exit order, or of the previous exit order it replaced (D3, D14)."""
        return order != NO_ORDER and order != self.entry_order and (
            (order == self.exit_order and cum_lots <= self.exit_filled_lots)
            or (order == self.prev_exit_order and order != self.exit_order and cum_lots <= self.prev_exit_filled_lots))

    def is_foreign_order(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> bool:
        return order == NO_ORDER or (order != self.entry_order and order != self.exit_order
                                     and order != self.prev_exit_order)

    # ------------------------------------------------------------------ guards: MARK_PRICE

    def is_sane_price(self, *, px: Decimal) -> bool:
        return px >= MIN_SANE_PX

    # ------------------------------------------------------------------ effects

    def open_trade(self, *, order: int, new_side: Side, qty_lots: int, new_leverage: int, exit_legs: int,
                   new_leg_ratio_0: Decimal, new_leg_ratio_1: Decimal, **_: object) -> None:
        """Start trade n+1 from a clean book and send the entry order (D5, D10)."""
        self.side = new_side
        self.leverage = new_leverage
        self.trade_seq += 1
        self.entry_order = order
        self.entry_target_lots = qty_lots
        self.entry_filled_lots = 0
        self.entry_cost_usdt = self.entry_fee_usdt = ZERO
        self._reset_exit_order(NO_ORDER, 0, 0)
        self.prev_exit_order = NO_ORDER
        self.prev_exit_target_lots = self.prev_exit_filled_lots = 0
        self.prev_exit_cost_usdt = self.prev_exit_fee_usdt = ZERO
        self.exited_lots = 0
        self.exit_cost_usdt = self.closed_basis_usdt = self.realised_pnl_usdt = self.fees_usdt = ZERO
        self.leg_count = exit_legs
        self.leg_ratio_0 = new_leg_ratio_0 if exit_legs >= 2 else ZERO
        self.leg_ratio_1 = new_leg_ratio_1 if exit_legs == 3 else ZERO
        self.active_leg = 0
        self.leg_exited_lots = 0
        self.outbox.append(("PLACE_ORDER", {"order": order, "role": Role.ENTRY, "side": new_side,
                                            "qty_lots": qty_lots, "reduce_only": False}))
        self.outcome = Outcome.OK

    def book_entry_fill(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> None:
        """Book the entry at the venue's cumulative quote and fee (D2, D4, D14)."""
        self.fees_usdt += cum_fee_usdt - self.entry_fee_usdt
        self.entry_filled_lots = cum_lots
        self.entry_cost_usdt = cum_quote_usdt
        self.entry_fee_usdt = cum_fee_usdt
        self.outcome = Outcome.OK

    def book_entry_fill_and_send_exit(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                                      cum_fee_usdt: Decimal) -> None:
        """The entry completed while an exit waited for its cancel: send that exit now."""
        self.book_entry_fill(order=order, cum_lots=cum_lots, cum_quote_usdt=cum_quote_usdt, cum_fee_usdt=cum_fee_usdt)
        self._send_requested_exit()

    def send_requested_exit(self, *, order: int) -> None:
        """The entry remainder is gone (cancelled or expired): send the requested exit."""
        self._send_requested_exit()

    def _send_requested_exit(self) -> None:
        size_lots = self._requested_exit_lots()
        self.exit_target_lots = size_lots
        self._place_exit(self.exit_order, size_lots)

    def send_exit(self, *, order: int, qty_lots: int) -> None:
        """Send an exit sized by the slot: the active leg, capped by the asked lots (D15)."""
        leg_lots = self.active_leg_lots
        size_lots = min(qty_lots, leg_lots) if qty_lots > 0 else leg_lots
        # An exit order that ended short of its target (cancelled or expired, not rejected) is remembered: a fill
        # report of it can still follow its cancel confirmation (D3, D14).
        replaced = self.exit_order != NO_ORDER and self.exit_filled_lots < self.exit_target_lots
        if replaced and self.state != EXIT_REJECTED:
            self.prev_exit_order = self.exit_order
            self.prev_exit_target_lots = self.exit_target_lots
            self.prev_exit_filled_lots = self.exit_filled_lots
            self.prev_exit_cost_usdt = self.exit_order_cost_usdt
            self.prev_exit_fee_usdt = self.exit_order_fee_usdt
        self._reset_exit_order(order, qty_lots, size_lots)
        self._place_exit(order, size_lots)

    def request_exit(self, *, order: int, qty_lots: int) -> None:
        """Exit while the entry remainder is live: cancel the remainder first."""
        self._reset_exit_order(order, qty_lots, 0)
        self.outbox.append(("CANCEL_ORDER", {"order": self.entry_order}))
        self.outcome = Outcome.OK

    def request_exit_after_cancel(self, *, order: int, qty_lots: int) -> None:
        """Exit while the entry cancel is already in flight: wait for it, no second cancel."""
        self._reset_exit_order(order, qty_lots, 0)
        self.outcome = Outcome.OK

    def _reset_exit_order(self, order: int, wanted_lots: int, target_lots: int) -> None:
        self.exit_order = order
        self.exit_wanted_lots = wanted_lots
        self.exit_target_lots = target_lots
        self.exit_filled_lots = 0
        self.exit_order_cost_usdt = self.exit_order_fee_usdt = ZERO

    def _place_exit(self, order: int, qty_lots: int) -> None:
        self.outbox.append(("PLACE_ORDER", {"order": order, "role": Role.EXIT, "side": self.side,
                                            "qty_lots": qty_lots, "reduce_only": True}))
        self.outcome = Outcome.OK

    def book_exit_fill(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> None:
        """Book an exit fill: realised PnL = side x (exit quote - entry basis), never x leverage (D1, D2)."""
        delta_lots = cum_lots - self.exit_filled_lots
        delta_quote_usdt = cum_quote_usdt - self.exit_order_cost_usdt
        fee_delta_usdt = cum_fee_usdt - self.exit_order_fee_usdt
        self.exit_filled_lots = cum_lots
        self.exit_order_cost_usdt = cum_quote_usdt
        self.exit_order_fee_usdt = cum_fee_usdt
        self._book_exit_lots(delta_lots, delta_quote_usdt, fee_delta_usdt)

    def book_prev_exit_fill(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                            cum_fee_usdt: Decimal) -> None:
        """A late report of the previous exit order: its lots beyond what was booked of it book as exit (D3, D14)."""
        delta_lots = cum_lots - self.prev_exit_filled_lots
        delta_quote_usdt = cum_quote_usdt - self.prev_exit_cost_usdt
        fee_delta_usdt = cum_fee_usdt - self.prev_exit_fee_usdt
        self.prev_exit_filled_lots = cum_lots
        self.prev_exit_cost_usdt = cum_quote_usdt
        self.prev_exit_fee_usdt = cum_fee_usdt
        self._book_exit_lots(delta_lots, delta_quote_usdt, fee_delta_usdt)

    def book_prev_exit_fill_and_close(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                                      cum_fee_usdt: Decimal) -> None:
        """A late report of the previous exit order closed the last open lots (D3, D12, D14)."""
        self.book_prev_exit_fill(order=order, cum_lots=cum_lots, cum_quote_usdt=cum_quote_usdt,
                                 cum_fee_usdt=cum_fee_usdt)
        self._rewrite_trade()

    def _book_exit_lots(self, delta_lots: int, delta_quote_usdt: Decimal, fee_delta_usdt: Decimal) -> None:
        """Exited lots at the venue's quote against the open lots' average entry price; legs advance (D1, D2)."""
        basis_usdt = delta_lots * self.open_avg_px
        leg_done = self.active_leg < self.leg_count - 1 and self.leg_exited_lots + delta_lots >= self.leg_goal_lots
        self.fees_usdt += fee_delta_usdt
        self.exited_lots += delta_lots
        self.exit_cost_usdt += delta_quote_usdt
        self.closed_basis_usdt += basis_usdt
        self.realised_pnl_usdt += SIDE_SIGN[self.side] * (delta_quote_usdt - basis_usdt)
        if leg_done:  # the leg advances when the lots closed in it reach its goal
            self.active_leg += 1
            self.leg_exited_lots = 0
        else:
            self.leg_exited_lots += delta_lots
        self.outcome = Outcome.OK

    def book_exit_fill_and_close(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal,
                                 cum_fee_usdt: Decimal) -> None:
        """The last open lots closed: ask for the trade's terminal record (D12)."""
        self.book_exit_fill(order=order, cum_lots=cum_lots, cum_quote_usdt=cum_quote_usdt, cum_fee_usdt=cum_fee_usdt)
        self.outbox.append(("TRADE_CLOSED", {"trade_seq": self.trade_seq, "realised_pnl_usdt": self.realised_pnl_usdt,
                                             "fees_usdt": self.fees_usdt}))

    def settle_entry_fee(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> None:
        self.fees_usdt += cum_fee_usdt - self.entry_fee_usdt
        self.entry_fee_usdt = cum_fee_usdt
        self.outcome = Outcome.OK

    def settle_exit_fee(self, *, order: int, cum_lots: int, cum_quote_usdt: Decimal, cum_fee_usdt: Decimal) -> None:
        self.fees_usdt += cum_fee_usdt - self.exit_order_fee_usdt
        self.exit_order_fee_usdt = cum_fee_usdt
        self.outcome = Outcome.OK

    def _rewrite_trade(self) -> None:
        self.outbox.append(("TRADE_CLOSED", {"trade_seq": self.trade_seq, "realised_pnl_usdt": self.realised_pnl_usdt,
                                             "fees_usdt": self.fees_usdt}))

    def settle_entry_fee_and_rewrite(self, **fill: Any) -> None:
        """The fee settled after the close: the terminal record is written again with the actual fees."""
        self.settle_entry_fee(**fill)
        self._rewrite_trade()

    def settle_exit_fee_and_rewrite(self, **fill: Any) -> None:
        self.settle_exit_fee(**fill)
        self._rewrite_trade()

    def cancel_order(self, *, order: int) -> None:
        self.outbox.append(("CANCEL_ORDER", {"order": order}))
        self.outcome = Outcome.OK

    def track_mark(self, *, px: Decimal) -> None:
        self.mark_px = px
        self.outcome = Outcome.OK

    def freeze_entries(self) -> None:
        self.entries_frozen = True
        self.outcome = Outcome.OK

    def unfreeze_entries(self) -> None:
        self.entries_frozen = False
        self.outcome = Outcome.OK

    # ------------------------------------------------------------------ outcome-only rows

    def accept(self, **_: object) -> None:
        self.outcome = Outcome.OK

    def refuse_entry_frozen(self, **_: object) -> None:
        self.outcome = Outcome.ENTRY_FROZEN

    def refuse_venue_not_flat(self, **_: object) -> None:
        self.outcome = Outcome.VENUE_NOT_FLAT

    def refuse_invalid_intent(self, **_: object) -> None:
        self.outcome = Outcome.INVALID_INTENT

    def refuse_slot_busy(self, **_: object) -> None:
        self.outcome = Outcome.SLOT_BUSY

    def refuse_no_open_position(self, **_: object) -> None:
        self.outcome = Outcome.NO_OPEN_POSITION

    def refuse_exit_in_progress(self, **_: object) -> None:
        self.outcome = Outcome.EXIT_IN_PROGRESS

    def refuse_invalid_event(self, **_: object) -> None:
        self.outcome = Outcome.INVALID_EVENT

    def ignore_duplicate(self, **_: object) -> None:
        self.outcome = Outcome.DUPLICATE_EVENT

    def ignore_foreign_order(self, **_: object) -> None:
        self.outcome = Outcome.FOREIGN_ORDER

    def ignore_no_live_order(self, **_: object) -> None:
        self.outcome = Outcome.NO_LIVE_ORDER

    def ignore_stale(self, **_: object) -> None:
        self.outcome = Outcome.STALE_EVENT


# ---------------------------------------------------------------------- the table

ANY: Final = "*"
FREE: Final = (IDLE, ORDER_REJECTED, TRADE_TERMINAL_WRITTEN)
BUSY: Final = tuple(s for s in STATES if s not in FREE)
ENTRY_LIVE: Final = (ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL)
EXIT_LIVE: Final = (EXIT_SENT, EXIT_ACKED, EXIT_WORKING)
EXIT_ENDING: Final = (*EXIT_LIVE, EXIT_CANCELLING)
CAN_EXIT: Final = (POSITION_OPEN, PARTIALLY_CLOSED, EXIT_REJECTED)
ENTRY_REMAINDER_LIVE: Final = (ENTRY_PARTIAL, ENTRY_CANCELLING)
EXITING: Final = (POSITION_OPEN, EXIT_REQUESTED, *EXIT_ENDING, PARTIALLY_CLOSED, EXIT_REJECTED)
"""States with a position (or an exit) in hand: a late entry fill enlarges the position there."""
EXIT_FILL_LATE: Final = (EXIT_CANCELLING, POSITION_OPEN, PARTIALLY_CLOSED)
"""States where an exit fill that raced a cancel (or the end of the exit order) books without moving."""
CLOSED_STATES: Final = (CLOSED, TRADE_TERMINAL_WRITTEN)
NOT_CLOSED: Final = tuple(s for s in STATES if s not in CLOSED_STATES)
EXIT_CAN_CLOSE: Final = (*EXIT_ENDING, POSITION_OPEN, PARTIALLY_CLOSED)
"""States where an exit order can be filling: its last lots close the trade."""
PREV_EXIT_REPORTS: Final = (*EXIT_ENDING, POSITION_OPEN, PARTIALLY_CLOSED, EXIT_REJECTED)
"""States after an exit order replaced another: a late report of the replaced one books as exit (D3, D14)."""


class Row(NamedTuple):
    """One row: tried in list order among the rows of its event; `dest` None keeps the state."""

    row_id: int
    event: str
    sources: str | tuple[str, ...]
    dest: str | None
    guard: str | None
    action: str


ROWS: Final[tuple[Row, ...]] = (
    # ENTER
    Row(0, "ENTER", FREE, ENTRY_SUBMITTED, "can_enter", "open_trade"),
    Row(1, "ENTER", FREE, None, "entries_are_frozen", "refuse_entry_frozen"),
    Row(2, "ENTER", FREE, None, "venue_not_flat", "refuse_venue_not_flat"),
    Row(3, "ENTER", FREE, None, None, "refuse_invalid_intent"),
    Row(4, "ENTER", BUSY, None, None, "refuse_slot_busy"),
    # ACK / REJECT
    Row(5, "ACK", (ENTRY_SUBMITTED,), ENTRY_WORKING, "is_entry_order", "accept"),
    Row(19, "ACK", (EXIT_SENT,), EXIT_ACKED, "is_exit_order", "accept"),
    Row(52, "ACK", ANY, None, None, "ignore_stale"),
    Row(6, "REJECT", (ENTRY_SUBMITTED, ENTRY_CANCELLING), ORDER_REJECTED, "is_unfilled_entry_order", "accept"),
    Row(20, "REJECT", (EXIT_SENT, EXIT_CANCELLING), EXIT_REJECTED, "is_unfilled_exit_order", "accept"),
    Row(53, "REJECT", ANY, None, None, "ignore_stale"),
    # FILL: entry fills by identity first (D3), then exit fills, then the reports that change nothing
    Row(8, "FILL", (*ENTRY_LIVE, ENTRY_CANCELLING), POSITION_OPEN, "is_entry_fill_complete", "book_entry_fill"),
    Row(10, "FILL", (EXIT_REQUESTED,), EXIT_SENT, "is_entry_fill_complete", "book_entry_fill_and_send_exit"),
    Row(7, "FILL", ENTRY_LIVE, ENTRY_PARTIAL, "is_entry_fill", "book_entry_fill"),
    Row(9, "FILL", (ENTRY_CANCELLING,), None, "is_entry_fill", "book_entry_fill"),
    Row(11, "FILL", EXITING, None, "is_entry_fill", "book_entry_fill"),
    Row(12, "FILL", (IDLE, ORDER_REJECTED, CLOSED, TRADE_TERMINAL_WRITTEN), POSITION_OPEN, "is_entry_fill",
        "book_entry_fill"),
    Row(21, "FILL", EXIT_LIVE, EXIT_WORKING, "is_exit_fill_partial", "book_exit_fill"),
    Row(22, "FILL", EXIT_LIVE, PARTIALLY_CLOSED, "is_exit_fill_order_done", "book_exit_fill"),
    Row(23, "FILL", EXIT_CAN_CLOSE, CLOSED, "is_exit_fill_closing", "book_exit_fill_and_close"),
    Row(24, "FILL", EXIT_FILL_LATE, None, "is_exit_fill_partial", "book_exit_fill"),
    Row(25, "FILL", (EXIT_CANCELLING,), PARTIALLY_CLOSED, "is_exit_fill_order_done", "book_exit_fill"),
    Row(26, "FILL", (POSITION_OPEN, PARTIALLY_CLOSED), None, "is_exit_fill_order_done", "book_exit_fill"),
    Row(27, "FILL", PREV_EXIT_REPORTS, None, "is_prev_exit_fill", "book_prev_exit_fill"),
    Row(28, "FILL", PREV_EXIT_REPORTS, CLOSED, "is_prev_exit_fill_closing", "book_prev_exit_fill_and_close"),
    Row(29, "FILL", NOT_CLOSED, None, "is_entry_fee_settlement", "settle_entry_fee"),
    Row(30, "FILL", CLOSED_STATES, None, "is_entry_fee_settlement", "settle_entry_fee_and_rewrite"),
    Row(31, "FILL", NOT_CLOSED, None, "is_exit_fee_settlement", "settle_exit_fee"),
    Row(32, "FILL", CLOSED_STATES, None, "is_exit_fee_settlement", "settle_exit_fee_and_rewrite"),
    Row(33, "FILL", ANY, None, "is_entry_duplicate", "ignore_duplicate"),
    Row(34, "FILL", ANY, None, "is_exit_duplicate", "ignore_duplicate"),
    Row(35, "FILL", ANY, None, "is_foreign_order", "ignore_foreign_order"),
    Row(36, "FILL", ANY, None, None, "refuse_invalid_event"),
    # EXIT
    Row(13, "EXIT", CAN_EXIT, EXIT_SENT, "can_exit", "send_exit"),
    Row(14, "EXIT", (ENTRY_PARTIAL,), EXIT_REQUESTED, "can_request_exit", "request_exit"),
    Row(15, "EXIT", (ENTRY_CANCELLING,), EXIT_REQUESTED, "can_request_exit", "request_exit_after_cancel"),
    Row(16, "EXIT", (IDLE, ENTRY_SUBMITTED, ENTRY_WORKING, ORDER_REJECTED, CLOSED, TRADE_TERMINAL_WRITTEN), None,
        None, "refuse_no_open_position"),
    Row(18, "EXIT", (EXIT_REQUESTED, *EXIT_ENDING), None, None, "refuse_exit_in_progress"),
    Row(17, "EXIT", (*ENTRY_REMAINDER_LIVE, *CAN_EXIT), None, None, "refuse_invalid_intent"),
    # CANCEL
    Row(37, "CANCEL", ENTRY_LIVE, ENTRY_CANCELLING, "is_live_entry_order", "cancel_order"),
    Row(38, "CANCEL", EXIT_LIVE, EXIT_CANCELLING, "is_live_exit_order", "cancel_order"),
    Row(39, "CANCEL", ANY, None, None, "ignore_no_live_order"),
    # CANCELLED / EXPIRED: the venue ended an order
    Row(40, "CANCELLED", (ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_CANCELLING), IDLE, "entry_ended_unfilled", "accept"),
    Row(42, "CANCELLED", ENTRY_REMAINDER_LIVE, POSITION_OPEN, "entry_ended_part_filled", "accept"),
    Row(44, "CANCELLED", (EXIT_REQUESTED,), EXIT_SENT, "is_entry_order", "send_requested_exit"),
    Row(46, "CANCELLED", EXIT_ENDING, POSITION_OPEN, "exit_ended_unfilled", "accept"),
    Row(48, "CANCELLED", EXIT_ENDING, PARTIALLY_CLOSED, "exit_ended_part_filled", "accept"),
    Row(50, "CANCELLED", ANY, None, None, "ignore_stale"),
    Row(41, "EXPIRED", (ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_CANCELLING), IDLE, "entry_ended_unfilled", "accept"),
    Row(43, "EXPIRED", ENTRY_REMAINDER_LIVE, POSITION_OPEN, "entry_ended_part_filled", "accept"),
    Row(45, "EXPIRED", (EXIT_REQUESTED,), EXIT_SENT, "is_entry_order", "send_requested_exit"),
    Row(47, "EXPIRED", EXIT_ENDING, POSITION_OPEN, "exit_ended_unfilled", "accept"),
    Row(49, "EXPIRED", EXIT_ENDING, PARTIALLY_CLOSED, "exit_ended_part_filled", "accept"),
    Row(51, "EXPIRED", ANY, None, None, "ignore_stale"),
    # marks, freezes, audit
    Row(54, "MARK_PRICE", ANY, None, "is_sane_price", "track_mark"),
    Row(55, "MARK_PRICE", ANY, None, None, "refuse_invalid_intent"),
    Row(56, "FREEZE_ENTRIES", ANY, None, None, "freeze_entries"),
    Row(57, "UNFREEZE_ENTRIES", ANY, None, None, "unfreeze_entries"),
    Row(58, "TRADE_WRITTEN", (CLOSED,), TRADE_TERMINAL_WRITTEN, None, "accept"),
    Row(59, "TRADE_WRITTEN", (TRADE_TERMINAL_WRITTEN,), None, None, "accept"),
)
"""Every row of docs/machines/slot.md, grouped by event, each event's rows in the order they are tried."""


def _transitions_config() -> list[dict[str, Any]]:
    return [{"trigger": row.event, "source": row.sources if row.sources == ANY else list(row.sources),
             "dest": row.dest, "conditions": [] if row.guard is None else [row.guard], "before": [row.action]}
            for row in ROWS]


TRANSITIONS_CONFIG: Final = _transitions_config()
REFLEXIVE_TRANSITIONS_CONFIG: Final = [dict(row, dest="=") if row["dest"] is None else row
                                       for row in TRANSITIONS_CONFIG]
"""The same rows with every state-keeping row reflexive (`dest="="`: leave and re-enter the state)."""


class HandwrittenSlotMachine:
    """The slot table on a plain `transitions.Machine`: `machine.model.trigger("FILL", order=..., ...)`.

    `reflexive_self_loops=True` declares the rows that keep the state as reflexive transitions
    (`dest="="`: `transitions` leaves the state, sets it again and re-enters it) instead of internal ones.
    The generated code declared them that way until the generator switched to internal transitions; the
    benchmark keeps this variant as a diagnostic of what that choice costs on the very same machine.
    """

    def __init__(self, reflexive_self_loops: bool = False) -> None:
        self.model = SlotBook()
        config = REFLEXIVE_TRANSITIONS_CONFIG if reflexive_self_loops else TRANSITIONS_CONFIG
        self.machine = Machine(model=self.model, states=list(STATES), transitions=config,
                               initial=INITIAL, auto_transitions=False, send_event=False)

    @property
    def state(self) -> str:
        return self.model.state


# ---------------------------------------------------------------------- dict dispatch


class DictRow(NamedTuple):
    guard: Callable[..., bool] | None
    action: Callable[..., None]
    dest: str | None
    row_id: int


def _dict_table() -> dict[tuple[str, str], tuple[DictRow, ...]]:
    table: dict[tuple[str, str], list[DictRow]] = {}
    for row in ROWS:
        guard = None if row.guard is None else getattr(SlotBook, row.guard)
        action = getattr(SlotBook, row.action)
        for state in STATES if row.sources == ANY else row.sources:
            table.setdefault((state, row.event), []).append(DictRow(guard, action, row.dest, row.row_id))
    return {key: tuple(rows) for key, rows in table.items()}


TABLE: Final = _dict_table()
"""`TABLE[(state, event)]`: that event's rows for that state, in the order they are tried."""


class NoRowMatches(LookupError):
    """No row takes this event in this state."""

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"slot: event {event} is not handled in state {state}")
        self.state = state
        self.event = event


class DictSlotMachine:
    """The slot table as a dict of rows: `fire(event, **params)` runs the first row whose guard holds."""

    def __init__(self) -> None:
        self.model = SlotBook()

    @property
    def state(self) -> str:
        return self.model.state

    def fire(self, event: str, **params: Any) -> int:
        """Apply one event; returns the id of the row that fired."""
        model = self.model
        for guard, action, dest, row_id in TABLE.get((model.state, event), ()):
            if guard is None or guard(model, **params):
                action(model, **params)
                if dest is not None:
                    model.state = dest
                return row_id
        raise NoRowMatches(model.state, event)
