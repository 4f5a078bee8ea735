"""The codec: every kernel input event and command round-trips through canonical JSON (Decimals as text)."""

from __future__ import annotations

import json
import typing
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from test_audit_support import contracts

from pink_fsm.audit.codec import (
    COMMAND_TYPES,
    EVENT_TYPES,
    canonical_json,
    decode_command,
    decode_contracts,
    decode_event,
    decode_kernel_config,
    encode_command,
    encode_contracts,
    encode_event,
    encode_kernel_config,
)
from pink_fsm.kernel import events as ev
from pink_fsm.kernel.kernel import KernelConfig
from pink_fsm.kernel.values import ClientOrderId, ExecId, Side, Symbol, VenueOrderId

_SIMPLE: dict[Any, st.SearchStrategy[Any]] = {
    int: st.integers(min_value=-(2**62), max_value=2**62),
    bool: st.booleans(),
    str: st.text(max_size=20),
    Decimal: st.decimals(allow_nan=True, allow_infinity=True, places=None),
    Symbol: st.builds(Symbol, st.from_regex(r"[A-Z0-9]{1,8}", fullmatch=True), st.sampled_from(["USDT", "USDC"])),
    ClientOrderId: st.builds(ClientOrderId, st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True)),
    VenueOrderId: st.builds(VenueOrderId, st.from_regex(r"[0-9]{1,24}", fullmatch=True)),
    ExecId: st.builds(ExecId, st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80)),
    Side: st.sampled_from(Side),
}


def strategy(tp: Any) -> st.SearchStrategy[Any]:
    """Any value of a field's declared type, built from the type hints (so a new field is covered too)."""
    if tp in _SIMPLE:
        return _SIMPLE[tp]
    origin = typing.get_origin(tp)
    if origin is tuple:
        return st.lists(strategy(typing.get_args(tp)[0]), max_size=3).map(tuple)
    if origin is not None:  # X | None
        return st.one_of(*(st.none() if t is type(None) else strategy(t) for t in typing.get_args(tp)))
    assert attrs.has(tp), tp
    hints = typing.get_type_hints(tp)
    return st.builds(tp, **{f.name: strategy(hints[f.name]) for f in attrs.fields(tp)})


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return canonical_json(a) == canonical_json(b)  # Decimal NaN != NaN, its text is equal


@settings(max_examples=40, deadline=None)
@given(st.one_of(*(strategy(cls) for cls in EVENT_TYPES.values())))
def test_every_kernel_event_round_trips_through_canonical_json(event: Any) -> None:
    text = canonical_json(encode_event(event))
    decoded = decode_event(json.loads(text))
    assert type(decoded) is type(event)
    assert _same(encode_event(decoded), encode_event(event))
    if canonical_json(encode_event(event)).count("NaN") == 0:
        assert decoded == event


@settings(max_examples=40, deadline=None)
@given(st.one_of(*(strategy(cls) for cls in COMMAND_TYPES.values())))
def test_every_command_round_trips_through_canonical_json(command: Any) -> None:
    decoded = decode_command(json.loads(canonical_json(encode_command(command))))
    assert type(decoded) is type(command)
    assert _same(encode_command(decoded), encode_command(command))


def test_the_codec_covers_every_event_and_command_class_of_the_kernel() -> None:
    kernel_event_classes = set(typing.get_args(ev.Intent)) | set(typing.get_args(ev.VenueEvent))
    assert set(EVENT_TYPES.values()) == kernel_event_classes
    assert set(COMMAND_TYPES.values()) == set(typing.get_args(ev.Command))


def test_decimals_are_written_as_their_exact_text() -> None:
    event = ev.MarkPrice(5, Symbol.parse("FETUSDT"), Decimal("0.60910"))
    assert canonical_json(encode_event(event)) == '{"px":"0.60910","symbol":"FET-USDT","ts_ms":5,"type":"MarkPrice"}'
    assert decode_event(encode_event(event)).px.as_tuple() == Decimal("0.60910").as_tuple()


def test_a_malformed_float_the_kernel_would_refuse_is_tagged_not_lost() -> None:
    event = ev.ExitIntent(1, 0.5, "float qty")  # type: ignore[arg-type]
    encoded = encode_event(event)
    assert encoded["qty"] == {"$float": "0.5"}
    assert decode_event(encoded) == event


def test_contracts_and_kernel_config_round_trip() -> None:
    assert decode_contracts(json.loads(canonical_json(encode_contracts(contracts())))) == contracts()
    config = KernelConfig(session="7", strategy_max_leverage=Decimal("5.5"), unattributable="ignore")
    assert decode_kernel_config(json.loads(canonical_json(encode_kernel_config(config)))) == config
