"""What a run records about itself (`RunInfo`), and the redaction that keeps secrets out of the log.

`redact(value)` replaces the value of every mapping key that names a secret (secret, key, token, password,
passphrase, signature, credential, auth, cookie, private) with "[REDACTED]", at any depth, before anything is
written. The rule is by key name, so a secret must live under such a key (the config loader's job).

    >>> redact({"bingx": {"api_key": "abc", "api_secret": "xyz", "symbols": ["FET-USDT"]}})
    {'bingx': {'api_key': '[REDACTED]', 'api_secret': '[REDACTED]', 'symbols': ['FET-USDT']}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import attrs

from pink_fsm.kernel.kernel import KernelConfig
from pink_fsm.kernel.values import ContractSpec, Symbol

__all__ = ["REDACTED", "SECRET_KEY", "RunInfo", "redact"]

REDACTED: Final = "[REDACTED]"
SECRET_KEY: Final = re.compile(r"secret|key|token|passw|passphrase|signature|credential|auth|cookie|private",
                               re.IGNORECASE)
MAX_REDACT_DEPTH: Final = 32  # a config nested deeper than this is cut (and says so) rather than recursed


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of `value` with every secret-named key's value replaced (see the module doc)."""
    if depth > MAX_REDACT_DEPTH:
        return "[TOO DEEP]"
    if isinstance(value, Mapping):
        return {str(k): REDACTED if SECRET_KEY.search(str(k)) else redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, depth + 1) for item in value]
    return value


@attrs.frozen
class RunInfo:
    """The run's identity, written to `runs` and the chain's `run_start` row.

    `config` is the runtime's configuration as loaded (it is redacted here, whatever it holds); `contracts`,
    `seed_capital_usdt` and `kernel_config` are what a rebuild needs to build the same kernel."""

    contracts: Mapping[Symbol, ContractSpec]
    seed_capital_usdt: Decimal
    kernel_config: KernelConfig = attrs.field(factory=KernelConfig)
    config: Mapping[str, Any] = attrs.field(factory=dict)
    versions: Mapping[str, str] = attrs.field(factory=dict)
    seed: int | None = None
    spec_hashes: Mapping[str, str] = attrs.field(factory=dict)
