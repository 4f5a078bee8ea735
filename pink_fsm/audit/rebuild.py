"""Rebuild: replay a run's logged kernel inputs into a kernel restored from a checkpoint, and compare the result
with the run's final checkpoint. Equal means the log holds everything that moved the book.

The segment replayed is the one that ends at the run's last checkpoint and starts at the checkpoint before it
(a run writes one at start after recovery, one after every reconcile, one at end). A checkpoint may hold a live
trade (a run that started by adopting a position), which `persistence.restore` refuses on purpose, so
`restore_checkpoint` restores any valid snapshot of this spec exactly; it is for replay only, never for trading.

Inputs the original kernel refused and the log holds only as a repr (a malformed value the codec tags, see
codec.py) are skipped and counted: a refused input leaves the book unchanged.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from pink_fsm.audit.codec import CodecError, decode_contracts, decode_event, decode_kernel_config
from pink_fsm.audit.errors import AuditError
from pink_fsm.audit.reader import AuditReader
from pink_fsm.kernel import persistence
from pink_fsm.kernel.kernel import Kernel, KernelConfig
from pink_fsm.kernel.values import ContractSpec, Symbol

__all__ = ["MAX_DIFFS", "RebuildReport", "diff", "rebuild", "restore_checkpoint"]

MAX_DIFFS = 50  # differences listed in a report; the count says how many there were


def restore_checkpoint(data: Mapping[str, Any], contracts: Mapping[Symbol, ContractSpec],
                       config: KernelConfig | None = None) -> Kernel:
    """A kernel in exactly the checkpointed state, live trade or not (persistence.restore without its flat
    rule). Raises persistence.RestoreRefused for another snapshot version or spec, a malformed snapshot, or one
    that breaks the slot's invariants."""
    return persistence.restore(data, contracts, config, live_ok=True)


def diff(got: Any, want: Any, path: str = "") -> list[str]:
    """Where two JSON-like values differ, as `path: got != want` lines."""
    if isinstance(got, Mapping) and isinstance(want, Mapping):
        out: list[str] = []
        for key in sorted(set(got) | set(want), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in got or key not in want:
                out.append(f"{where}: {got.get(key, '<missing>')!r} != {want.get(key, '<missing>')!r}")
            else:
                out.extend(diff(got[key], want[key], where))
        return out
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [line for i, (g, w) in enumerate(zip(got, want, strict=True)) for line in diff(g, w, f"{path}[{i}]")]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


@attrs.frozen
class RebuildReport:
    equal: bool
    run_id: int
    from_seq: int
    to_seq: int
    replayed: int
    skipped: int
    first_divergence: str = ""
    differences: tuple[str, ...] = ()
    difference_count: int = 0


@contextlib.contextmanager
def _kernel_quiet() -> Iterator[None]:
    """The replayed kernel repeats the original's refusals; they were logged once already."""
    logger = logging.getLogger("pink_fsm.kernel")
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def rebuild(reader: AuditReader, run_id: int | None = None) -> RebuildReport:
    """Replay the last checkpointed segment of a run (the newest run when None); see the module doc."""
    run = reader.query("SELECT run_id, contracts, kernel_config FROM runs WHERE run_id = coalesce(?, "
                       "(SELECT max(run_id) FROM runs))", [run_id]).dicts()
    if not run:
        raise AuditError(f"no run {run_id} in {reader.path}")
    rid = int(run[0]["run_id"])
    marks = reader.query("SELECT seq, payload FROM events WHERE kind = 'checkpoint' AND run_id = ? ORDER BY seq",
                         [rid]).rows
    if len(marks) < 2:
        raise AuditError(f"run {rid} has {len(marks)} checkpoint(s); a rebuild needs the start and the end one "
                         f"(a run that did not end cleanly has no end checkpoint)")
    (start_seq, start_payload), (end_seq, end_payload) = marks[-2], marks[-1]
    contracts = decode_contracts(json.loads(run[0]["contracts"]))
    config = decode_kernel_config(json.loads(run[0]["kernel_config"]))
    kernel = restore_checkpoint(json.loads(start_payload)["snapshot"], contracts, config)
    inputs = reader.query("SELECT seq, outcome, to_state, payload FROM events WHERE kind = 'input' AND run_id = ? "
                          "AND seq > ? AND seq < ? ORDER BY seq", [rid, start_seq, end_seq]).rows
    replayed, skipped, divergence = 0, 0, ""
    with _kernel_quiet():
        for seq, outcome, to_state, payload in inputs:
            try:
                event = decode_event(json.loads(payload)["event"])
            except CodecError as exc:
                if outcome != "OK":
                    skipped += 1
                    continue
                raise AuditError(f"seq {seq}: an accepted input cannot be decoded ({exc})") from None
            result = kernel.handle(event)
            replayed += 1
            if not divergence and (result.outcome != outcome or (result.state or None) != to_state):
                divergence = (f"seq {seq}: logged {outcome} -> {to_state}, replay {result.outcome} -> "
                              f"{result.state}")
    lines = diff(persistence.snapshot(kernel), json.loads(end_payload)["snapshot"])
    return RebuildReport(not lines and not divergence, rid, int(start_seq), int(end_seq), replayed, skipped,
                         divergence, tuple(lines[:MAX_DIFFS]), len(lines))


