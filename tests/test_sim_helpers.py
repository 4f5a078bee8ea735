"""Shared builders for the sim venue tests (contracts, replay files, order requests, frame checks), imported by
the other test_sim_*.py files, and the tests of SimConfig's validation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from pink_adapters.sim import DEFAULT_START_MS, SimConfig, SimEngine, SimSymbol
from pink_fsm.kernel.normaliser import normalise_frame
from pink_fsm.kernel.values import ContractSpec, Symbol
from pink_fsm.ports import OrderRequest, OrderType

FET = Symbol.parse("FET-USDT")
BTC = Symbol.parse("BTC-USDT")
T0 = DEFAULT_START_MS
TICK = D("0.0001")


def fet(depth_lots: int = 1_000, resting_lots_per_quote: int = 1_000, annual_vol: float | None = None) -> SimSymbol:
    """FET-USDT with 1-unit lots and 0.0001 ticks, 5 bp taker / 2 bp maker."""
    contract = ContractSpec(FET, D("1"), TICK, 50, D("0.0005"), D("0.0002"))
    return SimSymbol(contract, D("0.6500"), D("2"), depth_lots, resting_lots_per_quote, annual_vol)


def write_replay(path: Path, rows: Iterable[tuple[int, str, str, str]], header: str = "ts_ms,symbol,bid,ask") -> Path:
    """A CSV replay: rows of (ms after T0, symbol, bid, ask)."""
    lines = [header] + [f"{T0 + dt},{sym},{bid},{ask}" for dt, sym, bid, ask in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def replay_engine(tmp_path: Path, prices: Sequence[tuple[str, str]], step_ms: int = 10_000,
                  **config: Any) -> SimEngine:
    """An engine on FET whose quotes are `prices` (bid, ask), one every `step_ms`; advanced to the first."""
    path = write_replay(tmp_path / "ticks.csv", [(i * step_ms, "FET-USDT", b, a) for i, (b, a) in enumerate(prices)])
    symbols = config.pop("symbols", (fet(),))
    engine = SimEngine(SimConfig(symbols=symbols, replay_path=path, start_ms=T0, **config))
    engine.advance(T0)
    return engine


def buy(client_id: str, qty: str, px: str | None = None, **kw: Any) -> OrderRequest:
    kind = OrderType.MARKET if px is None else OrderType.LIMIT
    return OrderRequest(client_id, kw.pop("symbol", FET), "BUY", kind, D(qty), None if px is None else D(px), **kw)


def sell(client_id: str, qty: str, px: str | None = None, **kw: Any) -> OrderRequest:
    kind = OrderType.MARKET if px is None else OrderType.LIMIT
    return OrderRequest(client_id, kw.pop("symbol", FET), "SELL", kind, D(qty), None if px is None else D(px), **kw)


def orders(frames: Sequence[dict[str, Any]], client_id: str | None = None) -> list[dict[str, Any]]:
    """The `o` objects of ORDER_TRADE_UPDATE frames (of one client id when given)."""
    return [f["o"] for f in frames if f["e"] == "ORDER_TRADE_UPDATE" and client_id in (None, f["o"]["c"])]


def assert_frames_normalise(frames: Sequence[dict[str, Any]]) -> None:
    """Every frame survives a JSON round trip and normalises cleanly; numbers other than E/T are strings."""
    for frame in frames:
        decoded = json.loads(json.dumps(frame))
        assert decoded == frame
        normalise_frame(decoded)
        if frame["e"] == "ORDER_TRADE_UPDATE":
            assert all(isinstance(v, str) for k, v in frame["o"].items() if k != "T"), frame


def wallet_from_frames(initial_usdt: D, frames: Sequence[dict[str, Any]]) -> D:
    """The wallet rebuilt from the user stream alone, without the kernel: initial + sum of realised PnL of every
    execution - the final cumulative commission of every order + funding."""
    realised = D(0)
    fee_by_order: dict[str, D] = {}
    funding = D(0)
    for f in frames:
        if f["e"] == "ORDER_TRADE_UPDATE":
            o = f["o"]
            if o["x"] in ("TRADE", "CALCULATED"):
                realised += D(o["rp"])
            fee_by_order[o["i"]] = -D(o["n"])  # cumulative: the last report of an order is its total
        elif f["e"] == "ACCOUNT_UPDATE" and f["a"]["m"] == "FUNDING_FEE":
            funding += D(f["a"]["B"][0]["bc"])
    return initial_usdt + realised - sum(fee_by_order.values(), D(0)) + funding


# ------------------------------------------------------------------ SimConfig validation


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"seed": -1}, "SimConfig.seed"),
    ({"quote_interval_ms": 0}, "SimConfig.quote_interval_ms"),
    ({"initial_balance_usdt": D("-1")}, "SimConfig.initial_balance_usdt"),
    ({"funding_rate_max_abs": D("0.5")}, "SimConfig.funding_rate_max_abs"),
    ({"symbols": ()}, "SimConfig.symbols"),
    ({"symbols": (fet(), fet())}, "SimConfig.symbols"),
    ({"end_ms": T0 - 1}, "SimConfig.end_ms"),
    ({"max_depth_levels": 0}, "SimConfig.max_depth_levels"),
])
def test_config_refuses_bad_values_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SimConfig(**kwargs)


def test_symbol_refuses_a_start_price_off_the_tick() -> None:
    contract = ContractSpec(FET, D("1"), TICK)
    with pytest.raises(ValueError, match=r"symbols\[FET-USDT\].start_px"):
        SimSymbol(contract, D("0.65005"))
    with pytest.raises(ValueError, match=r"symbols\[FET-USDT\].depth_lots"):
        SimSymbol(contract, D("0.65"), depth_lots=0)


def test_feed_params_refuse_nonsense_naming_the_field() -> None:
    from pink_adapters.sim import FeedParams

    with pytest.raises(ValueError, match=r"SimConfig\.feed\.annual_vol"):
        FeedParams(annual_vol=float("nan"))
    with pytest.raises(ValueError, match=r"SimConfig\.feed\.half_spread_ticks"):
        FeedParams(half_spread_ticks=0)
