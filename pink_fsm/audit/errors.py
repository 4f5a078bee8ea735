"""The audit log's errors. Every message names the file and says what to do next."""

from __future__ import annotations

__all__ = ["AuditCorrupt", "AuditError", "AuditInUse", "AuditQueryRefused", "AuditWriteError"]


class AuditError(Exception):
    """Something about the audit log is wrong; the message says what and what to do."""


class AuditInUse(AuditError):
    """Another process holds the audit file for writing (one writer per file)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class AuditCorrupt(AuditError):
    """The file exists but is not a readable pink audit log (corrupt, truncated, foreign, or its chain's tail is
    broken). The runtime must not trade on it, and must never replace it silently with a new empty log."""


class AuditWriteError(AuditError):
    """A group commit failed. The rows stay pending in memory; the next `commit()` retries them."""


class AuditQueryRefused(AuditError):
    """`pink audit sql` runs read-only SELECT statements only."""
