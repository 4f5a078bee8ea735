"""Start-up and restart recovery, without I/O: venue truth in, a kernel out.

The driver reads the venue in this order: open orders FIRST, then positions (D9: a resting order can fill
between the two reads; read the other way round, the fill would be in neither), then the wallet. Recovery
restores the last snapshot only if it was flat, then reconciles with what the venue showed: it adopts the
largest position, reports the rest as orphans (entries frozen), cancels own orders nobody works any more and
re-anchors capital to the wallet so nothing settled is booked twice (D5).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from pink_fsm.kernel import persistence
from pink_fsm.kernel.events import CancelOrder, Diagnostic
from pink_fsm.kernel.kernel import Kernel, KernelConfig
from pink_fsm.kernel.values import ClientOrderId, ContractSpec, Symbol
from pink_fsm.ports import VenueOrder, VenuePosition

LOG = logging.getLogger("pink_fsm.runtime.recovery")


@attrs.frozen
class Recovery:
    kernel: Kernel
    restored: bool  # the snapshot was used
    restore_note: str  # why not, when it was not
    adopted: str  # "" or a description of the adopted position
    orphans: tuple[str, ...]
    cancels: tuple[CancelOrder, ...]
    diagnostics: tuple[Diagnostic, ...]
    open_orders: tuple[VenueOrder, ...] = ()  # as read at recovery (their filled qty is already in `positions`)

    def cancelled_fills(self) -> dict[str, Decimal]:
        """Filled qty, as seen at recovery, of each earlier-session order recovery cancels."""
        cancelled = {c.client_id.value for c in self.cancels}
        return {o.client_id: o.filled_qty for o in self.open_orders if o.client_id in cancelled}


def recover(contracts: Mapping[Symbol, ContractSpec], config: KernelConfig, wallet_usdt: Decimal,
            open_orders: Sequence[VenueOrder], positions: Sequence[VenuePosition],
            snapshot: Mapping[str, Any] | None) -> Recovery:
    if not isinstance(wallet_usdt, Decimal) or not wallet_usdt.is_finite() or wallet_usdt <= 0:
        raise ValueError(f"venue balance {wallet_usdt!r}: a positive wallet is needed to seed capital")
    kernel: Kernel | None = None
    note = "no snapshot"
    if snapshot is not None:
        try:
            kernel = persistence.restore(snapshot, contracts, config)
            note = ""
        except persistence.RestoreRefused as exc:
            note = str(exc)
            LOG.warning("snapshot not restored: %s", note)
    restored = kernel is not None
    if kernel is None:
        kernel = Kernel(contracts, wallet_usdt, config)
    report = persistence.reconcile(
        kernel,
        [persistence.VenueOpenOrder(o.symbol, _client(o.client_id), o.venue_id) for o in open_orders],
        [persistence.VenuePosition(p.symbol, p.side, p.qty, p.entry_px, p.leverage) for p in positions],
        wallet_usdt,
    )
    adopted = ""
    if report.adopted is not None:
        a = report.adopted
        adopted = f"{a.side.name} {a.qty} {a.symbol} @ {a.entry_px}"
    orphans = tuple(f"{p.side.name} {p.qty} {p.symbol}" for p in report.orphans)
    # Orders of an earlier session are attempts (`<working id>_<n>`) the kernel never knew: cancel every own
    # order that no one works any more, whatever its exact id.
    cancels = list(report.cancels)
    named = {c.client_id.value for c in cancels}
    prefix = config.client_id_prefix
    for order in open_orders:
        if order.client_id.startswith(prefix) and order.client_id not in named:
            cancels.append(CancelOrder(ClientOrderId(order.client_id), order.symbol))
            named.add(order.client_id)
    return Recovery(kernel, restored, note, adopted, orphans, tuple(cancels), report.diagnostics,
                    tuple(open_orders))


def _client(raw: str) -> ClientOrderId | None:
    try:
        return ClientOrderId(raw) if raw else None
    except ValueError:
        return None
