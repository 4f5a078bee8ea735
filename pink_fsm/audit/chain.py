"""The hash chain over the events table: each row's hash is SHA-256 of the previous row's hash and the row's
canonical form, so an edited, deleted, inserted or reordered row breaks the chain at (or right after) it.

The canonical form is the canonical JSON object of the row's chained columns that are not NULL; a column added
by a later schema version is NULL in older rows, so a migration never changes an old row's hash.

    >>> h1 = row_hash(GENESIS_HASH, {"seq": 1, "kind": "run_start"})
    >>> len(h1), h1 != GENESIS_HASH
    (64, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from pink_fsm.audit.codec import canonical_json

__all__ = ["CHAIN_COLUMNS", "GENESIS_HASH", "ChainReport", "row_hash", "verify_rows"]

GENESIS_HASH: Final = "0" * 64
CHAIN_COLUMNS: Final = (
    "seq", "run_id", "venue_ts_ms", "local_ts_ms", "kind", "machine", "from_state", "event", "to_state",
    "transition_id", "outcome", "trade_seq", "client_id", "venue_id", "payload",
)
"""The columns a row's hash covers, in the events table's order (`prev_hash` and `hash` follow them)."""


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    canonical = canonical_json({k: row[k] for k in CHAIN_COLUMNS if row.get(k) is not None})
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


@attrs.frozen
class ChainReport:
    """The verdict of a chain walk: `ok`, rows checked, the head, and the first bad seq with the reason."""

    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str = ""


def verify_rows(rows: Iterable[Sequence[Any]]) -> ChainReport:
    """Walk rows of (CHAIN_COLUMNS..., prev_hash, hash) in stored seq order; stop at the first bad row.

    A row is bad when its seq is not the previous seq + 1 (deleted or reordered rows), its prev_hash is not the
    previous row's hash, or its hash does not recompute (an edited row)."""
    prev_seq, prev_hash, count = 0, GENESIS_HASH, 0
    for values in rows:
        row = dict(zip((*CHAIN_COLUMNS, "prev_hash", "hash"), values, strict=True))
        seq = int(row["seq"])
        if seq != prev_seq + 1:
            why = f"seq {seq} follows seq {prev_seq}: rows deleted, inserted or reordered"
            return ChainReport(False, count, prev_seq, prev_hash, seq, why)
        if row["prev_hash"] != prev_hash:
            why = f"prev_hash does not match the hash of seq {prev_seq}: a row before it was changed or removed"
            return ChainReport(False, count, prev_seq, prev_hash, seq, why)
        if row_hash(prev_hash, row) != row["hash"]:
            return ChainReport(False, count, prev_seq, prev_hash, seq, "the row's hash does not recompute: edited")
        prev_seq, prev_hash, count = seq, row["hash"], count + 1
    return ChainReport(True, count, prev_seq, prev_hash)
