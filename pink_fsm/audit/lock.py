"""One writer per audit file: a sidecar lock file `<audit>.lock` holding the writer's PID, under `flock`.

The lock is advisory and released by the kernel when the process dies (even on kill -9), so a stale lock file
never blocks a restart; the PID inside is only for the message. DuckDB's own file lock stays in force too.

    >>> lock = AuditLock.acquire(Path("/tmp/x.duckdb"))  # doctest: +SKIP
    >>> lock.release()                                   # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from pink_fsm.audit.errors import AuditError, AuditInUse

__all__ = ["AuditLock", "lock_holder", "lock_path"]


def lock_path(audit_path: Path) -> Path:
    return audit_path.with_name(audit_path.name + ".lock")


def lock_holder(audit_path: Path) -> int | None:
    """The PID written in the lock file (whoever wrote it last), or None."""
    try:
        text = lock_path(audit_path).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return int(text[0]) if text and text[0].isdigit() else None


class AuditLock:
    """The held lock; `release()` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, audit_path: Path) -> AuditLock:
        """Take the writer's lock or raise AuditInUse naming the holder's PID and the lock file."""
        path = lock_path(audit_path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise AuditError(f"cannot create the audit lock file {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            pid = lock_holder(audit_path)
            raise AuditInUse(f"audit file {audit_path} is in use by PID {pid if pid else '?'} (lock {path}); "
                             f"stop that process, or give this one another --audit path", pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        os.fsync(fd)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
