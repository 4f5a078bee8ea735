"""What the kernel takes (intents from the policy, normalised venue events) and what it returns (commands)."""

from __future__ import annotations

from decimal import Decimal

import attrs

from pink_fsm.kernel.values import ClientOrderId, ExecId, Side, Symbol, VenueOrderId

# ------------------------------------------------------------------ intents (policy / router)


@attrs.frozen
class VenueTruth:
    """What the runtime learned from the venue right before an entry (open orders first, then positions: D9)."""

    probe_ok: bool
    position_lots: int  # lots of any position the venue shows on the account (any symbol)


@attrs.frozen
class EnterIntent:
    """Open a trade. `qty` is in base-asset units (rounded down to whole lots); `conviction` is the strategy's
    leverage, mapped to an integer exchange leverage (D10). Values may be malformed: the kernel checks them."""

    ts_ms: int
    symbol: Symbol
    side: Side
    qty: Decimal
    px_ref: Decimal
    conviction: Decimal
    venue: VenueTruth
    exit_legs: int = 1
    leg_ratios: tuple[Decimal, ...] = ()


@attrs.frozen
class ExitIntent:
    """Close the position (or the active leg). A missing or malformed `qty` closes the active leg (D15)."""

    ts_ms: int
    qty: Decimal | None = None
    reason: str = ""


@attrs.frozen
class CancelIntent:
    """Cancel the live entry (role ENTRY) or exit (role EXIT) order."""

    ts_ms: int
    role: str  # "ENTRY" | "EXIT"


@attrs.frozen
class MarkPrice:
    ts_ms: int
    symbol: Symbol
    px: Decimal


@attrs.frozen
class TradeWritten:
    """The audit log made the closed trade's terminal record durable (D12)."""

    ts_ms: int
    trade_seq: int


# ------------------------------------------------------------------ venue events (normalised)


@attrs.frozen
class OrderRef:
    """How a venue frame names an order: the client id when echoed, the venue id, the symbol."""

    symbol: Symbol
    client_id: ClientOrderId | None
    venue_id: VenueOrderId | None


@attrs.frozen
class OrderAccepted:
    ts_ms: int
    ref: OrderRef


@attrs.frozen
class OrderRejected:
    ts_ms: int
    ref: OrderRef
    reason: str = ""


@attrs.frozen
class OrderFilled:
    """An execution report with the order's CUMULATIVE executed qty, quote and fee (D14). `cum_quote_usdt` is
    computed from the venue's average fill price, never from the order's price (D2)."""

    ts_ms: int
    ref: OrderRef
    exec_id: ExecId
    cum_qty: Decimal
    cum_quote_usdt: Decimal
    cum_fee_usdt: Decimal | None  # None: the frame carried no fee; the fee model predicts it
    is_maker: bool


@attrs.frozen
class OrderCancelled:
    ts_ms: int
    ref: OrderRef
    expired: bool = False


@attrs.frozen
class AccountUpdate:
    """A balance frame. `wallet_usdt` None or 0 means a margin-only frame (D6): it never touches capital."""

    ts_ms: int
    wallet_usdt: Decimal | None


@attrs.frozen
class FundingFee:
    ts_ms: int
    symbol: Symbol | None  # BingX cross-margin funding frames name no symbol
    amount_usdt: Decimal  # negative: paid


VenueEvent = OrderAccepted | OrderRejected | OrderFilled | OrderCancelled | AccountUpdate | FundingFee
Intent = EnterIntent | ExitIntent | CancelIntent | MarkPrice | TradeWritten
KernelEvent = Intent | VenueEvent

# ------------------------------------------------------------------ commands (to the router / venue port / audit)


@attrs.frozen
class SetLeverage:
    symbol: Symbol
    leverage: int


@attrs.frozen
class PlaceOrder:
    client_id: ClientOrderId
    symbol: Symbol
    role: str  # "ENTRY" | "EXIT"
    side: str  # venue side: "BUY" | "SELL"
    qty: Decimal
    qty_lots: int
    reduce_only: bool
    trade_seq: int


@attrs.frozen
class CancelOrder:
    client_id: ClientOrderId
    symbol: Symbol


@attrs.frozen
class RecordTrade:
    """Write (or supersede: upsert by trade_seq) the trade's terminal record."""

    trade_seq: int
    symbol: Symbol
    side: Side
    qty_lots: int
    entry_vwap_px: Decimal
    realised_pnl_usdt: Decimal
    fees_usdt: Decimal


Command = SetLeverage | PlaceOrder | CancelOrder | RecordTrade


@attrs.frozen
class Diagnostic:
    """A counted, logged reason something was refused or ignored. `code` is stable (tests and audit read it)."""

    code: str
    detail: str


@attrs.frozen
class KernelResult:
    """What one event did. `outcome` is the slot machine's outcome, or a kernel code when the event never reached
    the machine (e.g. INVALID_INTENT for an unsafe entry, BAD_FRAME for a malformed venue frame)."""

    outcome: str
    commands: tuple[Command, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    transition_id: int = -1
    state: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome == "OK"
