"""Canonical JSON for audit payloads, and the lossless codec of every kernel input event and command.

Every class of `pink_fsm.kernel.events` round-trips: `decode_event(encode_event(e)) == e` (for Decimal NaN,
the re-encoding is equal). Decimals are written as their exact strings ("0.6091", "1E+3", "NaN"), value types
as their canonical text (`Symbol` "FET-USDT", order ids as text), enums by name, nested attrs values as
objects. A top-level object carries its class name under `"type"`:

    >>> encode_event(MarkPrice(1, Symbol.parse("FET-USDT"), Decimal("0.6091")))
    {'type': 'MarkPrice', 'ts_ms': 1, 'symbol': 'FET-USDT', 'px': '0.6091'}

The kernel accepts malformed values on purpose (it refuses them with a diagnostic), so the encoder never raises
on them: a float is tagged `{"$float": "0.1"}` (decoded back to the float), anything else of an unexpected type
is tagged `{"$repr": "..."}` (lossy: decoding it raises `CodecError`, and a rebuild skips such a refused input).
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import attrs

from pink_fsm.fsm.types import Side
from pink_fsm.kernel.events import (
    AccountUpdate,
    CancelIntent,
    CancelOrder,
    Command,
    Diagnostic,
    EnterIntent,
    ExitIntent,
    FundingFee,
    KernelEvent,
    MarkPrice,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRef,
    OrderRejected,
    PlaceOrder,
    RecordTrade,
    SetLeverage,
    TradeWritten,
    VenueTruth,
)
from pink_fsm.kernel.kernel import KernelConfig
from pink_fsm.kernel.values import ClientOrderId, ContractSpec, ExecId, Symbol, TradeId, VenueOrderId

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "CodecError",
    "canonical_json",
    "decode_command",
    "decode_contracts",
    "decode_event",
    "decode_kernel_config",
    "encode_command",
    "encode_contracts",
    "encode_event",
    "encode_kernel_config",
    "encode_value",
]

EVENT_TYPES: Final[Mapping[str, type]] = {cls.__name__: cls for cls in (
    EnterIntent, ExitIntent, CancelIntent, MarkPrice, TradeWritten,
    OrderAccepted, OrderRejected, OrderFilled, OrderCancelled, AccountUpdate, FundingFee)}
COMMAND_TYPES: Final[Mapping[str, type]] = {cls.__name__: cls for cls in (
    SetLeverage, PlaceOrder, CancelOrder, RecordTrade)}
_TEXT_IDS: Final = (ClientOrderId, VenueOrderId, ExecId, TradeId)
_NESTED: Final = (VenueTruth, OrderRef, Diagnostic, ContractSpec, KernelConfig)
MAX_REPR_CHARS: Final = 200  # a tagged repr of an unexpected value is cut here


class CodecError(ValueError):
    """A payload cannot be decoded into the kernel's types; the message names the field."""


def canonical_json(value: object) -> str:
    """The one JSON spelling of a value: sorted keys, no spaces, UTF-8 text, no NaN (Decimals are strings)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_json_default)


def _json_default(value: object) -> object:
    return encode_value(value)


def encode_value(value: object) -> Any:
    """The JSON-safe form of one value (see the module doc)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return {"$float": repr(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Symbol):
        return str(value)
    if isinstance(value, _TEXT_IDS):
        return value.value
    if attrs.has(type(value)):
        return {name: encode_value(item) for name, item in attrs.asdict(value, recurse=False).items()}  # type: ignore[arg-type]
    if isinstance(value, tuple | list):
        return [encode_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode_value(item) for key, item in value.items()}
    return {"$repr": repr(value)[:MAX_REPR_CHARS]}


def _encode_top(value: object, registry: Mapping[str, type], what: str) -> dict[str, Any]:
    name = type(value).__name__
    if registry.get(name) is not type(value):
        raise CodecError(f"{what}: {name} is not one of {', '.join(registry)}")
    encoded: dict[str, Any] = {"type": name}
    encoded.update(encode_value(value))
    return encoded


def encode_event(event: KernelEvent) -> dict[str, Any]:
    """A kernel input event (intent or normalised venue event) as a JSON-safe dict with its `type`."""
    return _encode_top(event, EVENT_TYPES, "kernel event")


def encode_command(command: Command) -> dict[str, Any]:
    return _encode_top(command, COMMAND_TYPES, "command")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, raw: Any, field: str) -> Any:
    if isinstance(raw, dict) and "$float" in raw:
        return float(raw["$float"])
    if isinstance(raw, dict) and "$repr" in raw:
        raise CodecError(f"{field}: the log holds only a repr of an unexpected value ({raw['$repr']})")
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        if raw is None:
            return None
        return _decode(options[0], raw, field)
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if not isinstance(raw, list):
            raise CodecError(f"{field}: expected a list, got {raw!r}")
        return tuple(_decode(item_tp, item, f"{field}[]") for item in raw)
    return _decode_scalar(tp, raw, field)


def _decode_scalar(tp: Any, raw: Any, field: str) -> Any:
    try:
        if tp is Decimal:
            return Decimal(raw) if isinstance(raw, str) else raw
        if tp is Symbol:
            return Symbol.parse(raw)
        if tp in _TEXT_IDS:
            return tp(raw)
        if tp is Side:
            return Side[raw]
        if isinstance(tp, type) and attrs.has(tp):
            return _decode_attrs(tp, raw, field)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CodecError(f"{field}: cannot decode {raw!r} as {getattr(tp, '__name__', tp)}: {exc}") from None
    return raw  # int, str, bool: JSON keeps them as they were


def _decode_attrs(cls: type, raw: Any, field: str) -> Any:
    if not isinstance(raw, dict):
        raise CodecError(f"{field}: expected an object for {cls.__name__}, got {raw!r}")
    hints = _hints(cls)
    kwargs = {}
    for f in attrs.fields(cls):
        if f.name in raw:
            kwargs[f.name] = _decode(hints[f.name], raw[f.name], f"{field}.{f.name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"{field}: cannot build {cls.__name__}: {exc}") from None


def _decode_top(raw: Mapping[str, Any], registry: Mapping[str, type], what: str) -> Any:
    name = raw.get("type") if isinstance(raw, Mapping) else None
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CodecError(f"{what}: unknown type {name!r}; expected one of {', '.join(registry)}")
    return _decode_attrs(cls, {k: v for k, v in raw.items() if k != "type"}, name or what)


def decode_event(raw: Mapping[str, Any]) -> KernelEvent:
    """The kernel event of an `encode_event` dict; CodecError naming the field when it cannot be rebuilt."""
    event: KernelEvent = _decode_top(raw, EVENT_TYPES, "kernel event")
    return event


def decode_command(raw: Mapping[str, Any]) -> Command:
    command: Command = _decode_top(raw, COMMAND_TYPES, "command")
    return command


def encode_contracts(contracts: Mapping[Symbol, ContractSpec]) -> list[dict[str, Any]]:
    return [encode_value(spec) for _, spec in sorted(contracts.items())]


def decode_contracts(raw: list[Any]) -> dict[Symbol, ContractSpec]:
    specs = [_decode_attrs(ContractSpec, item, "contracts[]") for item in raw]
    return {spec.symbol: spec for spec in specs}


def encode_kernel_config(config: KernelConfig) -> dict[str, Any]:
    encoded: dict[str, Any] = encode_value(config)
    return encoded


def decode_kernel_config(raw: Mapping[str, Any]) -> KernelConfig:
    config: KernelConfig = _decode_attrs(KernelConfig, dict(raw), "kernel_config")
    return config


assert all(attrs.has(cls) for cls in (*EVENT_TYPES.values(), *COMMAND_TYPES.values(), *_NESTED))
