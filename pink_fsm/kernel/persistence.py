"""Snapshot, restore and reconcile-from-venue: how a kernel survives a restart without booking anything twice.

* `snapshot(kernel)` is a versioned, JSON-safe dict of the slot machine (spec hash, state, variables), the
  account projection and the kernel's order book.
* `restore(snapshot, ...)` validates it and refuses unless the slot was flat: a trade that was open when the
  process died is rebuilt from venue truth instead (`reconcile`), never from a stale snapshot.
* `reconcile(kernel, open_orders, positions, wallet)` applies venue truth, read open orders first and positions
  second (D9): it adopts the largest position (reporting the rest as orphans), cancels own orders the slot does
  not know, and re-anchors capital to the wallet when flat, so settled PnL is never booked twice (D5).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pink_fsm.fsm.machine import MachineSnapshot
from pink_fsm.generated.slot import SPEC_SHA256, SlotModel
from pink_fsm.kernel.events import CancelOrder, Diagnostic
from pink_fsm.kernel.kernel import FLAT_STATES, Kernel, KernelConfig, OwnOrder
from pink_fsm.kernel.values import ClientOrderId, ContractSpec, Side, Symbol

SNAPSHOT_VERSION = 1
SNAPSHOT_EXEC_IDS = 1_000  # the most recent execution ids a snapshot keeps for duplicate detection


class RestoreRefused(ValueError):
    """The snapshot cannot be restored; the message says why and what to do (reconcile from the venue)."""


def _encode(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return value


def snapshot(kernel: Kernel) -> dict[str, Any]:
    m = kernel.slot
    a = kernel.account
    return {
        "version": SNAPSHOT_VERSION,
        "slot": {"spec_sha256": SPEC_SHA256, "state": m.state, "vars": {k: _encode(v) for k, v in m.vars().items()}},
        "account": {
            "anchor_usdt": str(a.anchor_usdt),
            "closed_net_usdt": str(a.closed_net_usdt),
            "funding_usdt": str(a.funding_usdt),
            "peak_equity_usdt": str(a.peak_equity_usdt),
            "mismatch": a.mismatch,
        },
        "fees": {str(symbol): str(model.calibration) for symbol, model in kernel.fee_models.items()},
        "kernel": {
            "next_ref": kernel.next_ref,
            "trade_symbol": str(kernel.trade_symbol) if kernel.trade_symbol else None,
            "folded_trade_seq": kernel.folded_trade_seq,
            "last_own_fill_ms": kernel.last_own_fill_ms,
            # Recent execution ids, so a late repeat after a restart is still recognised as a duplicate.
            "seen_exec_ids": list(kernel.seen_exec_ids)[-SNAPSHOT_EXEC_IDS:],
            "orders": [
                {"ref": o.ref, "client_id": o.client_id.value, "symbol": str(o.symbol), "role": o.role,
                 "trade_seq": o.trade_seq, "venue_id": o.venue_id}
                for o in kernel.orders.values()
            ],
        },
    }


def _decode_vars(raw: Mapping[str, Any]) -> dict[str, Any]:
    template = SlotModel()
    out: dict[str, Any] = {}
    for name in raw:
        if not hasattr(template, name):
            raise RestoreRefused(f"snapshot variable '{name}' is not a slot variable of this spec")
    for name, default in vars(template).items():
        if name in ("outcome", "fired", "outbox"):
            continue
        if name not in raw:
            raise RestoreRefused(f"snapshot lacks slot variable '{name}'")
        value = raw[name]
        try:
            if isinstance(default, Side):
                out[name] = Side[value]
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError
                out[name] = value
            elif isinstance(default, Decimal):
                decoded = Decimal(value)
                if not decoded.is_finite():
                    raise ValueError
                out[name] = decoded
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError
                out[name] = value
        except (KeyError, TypeError, ValueError, ArithmeticError):
            raise RestoreRefused(f"snapshot variable '{name}' has a bad value {value!r}") from None
    return out


def restore(data: Mapping[str, Any], contracts: Mapping[Symbol, ContractSpec],
            config: KernelConfig | None = None, *, live_ok: bool = False) -> Kernel:
    """A kernel in the snapshotted state; RestoreRefused unless the snapshot is valid, of this spec, and flat.

    `live_ok=True` drops the flat rule: only for replaying an audit checkpoint (the inputs that follow it are
    replayed too); a restart never resumes a live trade from a snapshot (venue truth rebuilds it)."""
    if not isinstance(data, Mapping) or data.get("version") != SNAPSHOT_VERSION:
        raise RestoreRefused(f"snapshot version {getattr(data, 'get', lambda _: None)('version')!r} is not "
                             f"{SNAPSHOT_VERSION}; reconcile from the venue instead")
    try:
        slot, account, book = data["slot"], data["account"], data["kernel"]
        if slot["spec_sha256"] != SPEC_SHA256:
            raise RestoreRefused("snapshot was taken with another slot spec; reconcile from the venue instead")
        state = slot["state"]
        values = _decode_vars(slot["vars"])
        if not live_ok and (state not in FLAT_STATES or values["entry_filled_lots"] != values["exited_lots"]):
            raise RestoreRefused(f"snapshot holds a live trade (state {state}); restore only when flat, "
                                 f"reconcile from the venue's open orders and positions instead")
        kernel = Kernel(contracts, Decimal(account["anchor_usdt"]), config)
        kernel.slot.restore(MachineSnapshot("slot", SPEC_SHA256, state, values))
        a = kernel.account
        a.closed_net_usdt = Decimal(account["closed_net_usdt"])
        a.funding_usdt = Decimal(account["funding_usdt"])
        a.peak_equity_usdt = Decimal(account["peak_equity_usdt"])
        a.mismatch = bool(account["mismatch"])
        for symbol_text, calibration in data.get("fees", {}).items():
            symbol = Symbol.parse(symbol_text)
            if symbol in kernel.fee_models:
                kernel.fee_models[symbol].calibration = Decimal(calibration)
        kernel.next_ref = int(book["next_ref"])
        kernel.trade_symbol = Symbol.parse(book["trade_symbol"]) if book["trade_symbol"] else None
        kernel.folded_trade_seq = int(book["folded_trade_seq"])
        kernel.last_own_fill_ms = book["last_own_fill_ms"]
        for exec_id in book.get("seen_exec_ids", []):
            kernel.seen_exec_ids[str(exec_id)] = None
        for o in book["orders"]:
            order = OwnOrder(int(o["ref"]), ClientOrderId(o["client_id"]), Symbol.parse(o["symbol"]), o["role"],
                             int(o["trade_seq"]), o["venue_id"])
            kernel.orders[order.ref] = order
            kernel.by_client[order.client_id.value] = order.ref
            if order.venue_id:
                kernel.by_venue[order.venue_id] = order.ref
    except RestoreRefused:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise RestoreRefused(f"snapshot is malformed ({exc!r}); reconcile from the venue instead") from None
    violated = kernel.slot.violated_invariants()
    if violated:
        raise RestoreRefused(f"snapshot breaks invariants {violated}; reconcile from the venue instead")
    return kernel


# ------------------------------------------------------------------ reconcile from venue truth


@attrs.frozen
class VenuePosition:
    symbol: Symbol
    side: Side
    qty: Decimal
    entry_px: Decimal
    leverage: int


@attrs.frozen
class VenueOpenOrder:
    symbol: Symbol
    client_id: ClientOrderId | None
    venue_id: str


@attrs.frozen
class ReconcileReport:
    adopted: VenuePosition | None
    orphans: tuple[VenuePosition, ...]
    cancels: tuple[CancelOrder, ...]
    diagnostics: tuple[Diagnostic, ...]


def reconcile(kernel: Kernel, open_orders: Sequence[VenueOpenOrder], positions: Sequence[VenuePosition],
              wallet_usdt: Decimal | None) -> ReconcileReport:
    """Apply venue truth (open orders read BEFORE positions, D9). Returns what was adopted, the orphans, and
    the cancels to send for own orders the slot does not know."""
    notes: list[Diagnostic] = []
    live = [p for p in positions if p.qty > 0]
    live.sort(key=lambda p: p.qty * p.entry_px, reverse=True)
    adopted: VenuePosition | None = None
    orphans: tuple[VenuePosition, ...] = ()
    if live:
        largest, *rest = live
        orphans = tuple(rest)
        if largest.symbol not in kernel.contracts:
            orphans = tuple(live)
            notes.append(Diagnostic("UNKNOWN_CONTRACT", f"venue position on {largest.symbol}: no contract spec"))
        elif not _matches(kernel, largest):
            _adopt(kernel, largest)
            adopted = largest
            notes.append(Diagnostic("ADOPTED", f"{largest.side.name} {largest.qty} {largest.symbol} @ "
                                               f"{largest.entry_px}"))
        for orphan in orphans:
            notes.append(Diagnostic("ORPHAN_POSITION", f"{orphan.side.name} {orphan.qty} {orphan.symbol}: single "
                                                       f"slot, flatten it by hand; entries stay frozen"))
    elif not kernel.flat:
        notes.append(Diagnostic("POSITION_VANISHED", f"the slot held a trade in {kernel.slot.state}, the venue "
                                                     f"shows none; the slot is reset and capital re-anchored"))
        _reset_flat(kernel)
    cancels = _unknown_own_orders(kernel, open_orders)
    if wallet_usdt is not None and wallet_usdt > 0:
        # Venue truth is the ledger: capital now equals the wallet; the adopted trade books from here on (D5).
        kernel.account.anchor_usdt += wallet_usdt - kernel.capital_usdt
        kernel.account.mismatch = False
    if orphans:
        kernel.account.mismatch = True
    frozen = kernel.slot.model.entries_frozen
    if kernel.account.mismatch and not frozen:
        kernel.slot.freeze_entries()
    elif not kernel.account.mismatch and frozen:
        kernel.slot.unfreeze_entries()
    return ReconcileReport(adopted, orphans, cancels, tuple(notes))


def _matches(kernel: Kernel, position: VenuePosition) -> bool:
    m = kernel.slot.model
    if kernel.trade_symbol != position.symbol or m.side is not position.side:
        return False
    return kernel.contracts[position.symbol].lots_floor(position.qty) == m.entry_filled_lots - m.exited_lots


def _fresh_vars(kernel: Kernel) -> dict[str, Any]:
    fresh = {k: v for k, v in vars(SlotModel()).items() if k not in ("outcome", "fired", "outbox")}
    fresh["trade_seq"] = kernel.slot.model.trade_seq
    fresh["entries_frozen"] = kernel.slot.model.entries_frozen
    # Every started trade carries its leverage (invariant leverage_is_integer_in_range): a reset to flat keeps the
    # last trade's, as the slot itself does after a trade (found by pink-codegen verify, router-crash profile).
    fresh["leverage"] = kernel.slot.model.leverage
    return fresh


def _adopt(kernel: Kernel, position: VenuePosition) -> None:
    contract = kernel.contracts[position.symbol]
    lots = contract.lots_floor(position.qty)
    kernel.fold_trade(kernel.slot.model.trade_seq, kernel.live_net_usdt)
    ref = kernel.next_ref
    kernel.next_ref += 1
    values = _fresh_vars(kernel)
    values.update(
        side=position.side,
        leverage=max(1, min(contract.max_leverage, position.leverage)),
        trade_seq=values["trade_seq"] + 1,
        entry_order=ref,
        entry_target_lots=lots,
        entry_filled_lots=lots,
        entry_cost_usdt=lots * position.entry_px * contract.lot_size,
        mark_px=position.entry_px * contract.lot_size,
    )
    kernel.trade_symbol = position.symbol
    client = ClientOrderId(f"{kernel.config.client_id_prefix}{kernel.config.session}_{ref}")
    kernel.orders[ref] = OwnOrder(ref, client, position.symbol, "ENTRY", values["trade_seq"])
    # The adopted trade starts with nothing realised: its past is in the wallet already, and capital is
    # re-anchored to the wallet below, so only what happens from now on is booked (D5).
    kernel.slot.restore(MachineSnapshot("slot", SPEC_SHA256, "POSITION_OPEN", values))


def _reset_flat(kernel: Kernel) -> None:
    kernel.fold_trade(kernel.slot.model.trade_seq, kernel.live_net_usdt)
    kernel.slot.restore(MachineSnapshot("slot", SPEC_SHA256, "IDLE", _fresh_vars(kernel)))


def _unknown_own_orders(kernel: Kernel, open_orders: Sequence[VenueOpenOrder]) -> tuple[CancelOrder, ...]:
    m = kernel.slot.model
    live_refs = {m.entry_order, m.exit_order} - {0}
    cancels: list[CancelOrder] = []
    for order in open_orders:
        ref = None
        if order.client_id is not None:
            ref = kernel.by_client.get(order.client_id.value)
            ours = ref is not None or order.client_id.value.startswith(kernel.config.client_id_prefix)
        else:
            ref = kernel.by_venue.get(order.venue_id)
            ours = ref is not None
        stale = ref is None or ref not in live_refs or kernel.slot.state in FLAT_STATES
        client = kernel.orders[ref].client_id if ref is not None else order.client_id
        if ours and stale and client is not None:
            cancels.append(CancelOrder(client, order.symbol))
    return tuple(cancels)
