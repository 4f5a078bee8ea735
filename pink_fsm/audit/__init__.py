"""The audit log: one DuckDB file per account, hash-chained, durable before commands are sent, replayable,
queryable. docs/audit.md is the contract; `AuditLog` writes, `AuditReader` reads, `audit_app` is `pink audit`.
"""

from pink_fsm.audit.errors import AuditCorrupt, AuditError, AuditInUse, AuditQueryRefused, AuditWriteError
from pink_fsm.audit.reader import AuditReader
from pink_fsm.audit.rebuild import RebuildReport, rebuild, restore_checkpoint
from pink_fsm.audit.runinfo import RunInfo, redact
from pink_fsm.audit.store import AuditLog, CommitResult

__all__ = [
    "AuditCorrupt",
    "AuditError",
    "AuditInUse",
    "AuditLog",
    "AuditQueryRefused",
    "AuditReader",
    "AuditWriteError",
    "CommitResult",
    "RebuildReport",
    "RunInfo",
    "rebuild",
    "redact",
    "restore_checkpoint",
]
