"""The simulated venue: determinism, matching, refusals, funding, exact accounting, snapshot/restore, replay."""

from __future__ import annotations

import json
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from test_sim_helpers import (
    BTC,
    FET,
    T0,
    assert_frames_normalise,
    buy,
    fet,
    orders,
    replay_engine,
    sell,
    wallet_from_frames,
    write_replay,
)

from pink_adapters.sim import ReplayError, SimConfig, SimEngine, default_symbols
from pink_fsm.kernel.events import FundingFee, OrderCancelled, OrderFilled
from pink_fsm.kernel.normaliser import normalise_frame
from pink_fsm.ports import OrderRequest, OrderType, RejectCode

HOUR_MS = 3_600_000


def synthetic(seed: int = 1, names: tuple[str, ...] = ("FET-USDT",), **kw: Any) -> SimEngine:
    engine = SimEngine(SimConfig(seed=seed, symbols=default_symbols(names), **kw))
    engine.advance(engine.now_ms)
    return engine


def scripted_run(engine: SimEngine, start_step: int = 0, steps: int = 40) -> tuple[list[Any], list[Any]]:
    """A fixed mix of market, resting, reduce-only and cancelled orders over `steps` half-hours; returns the
    quotes and frames (as JSON text) it produced."""
    quotes: list[Any] = []
    frames: list[Any] = []
    for step in range(start_step, start_step + steps):
        q = engine.quote(FET)
        assert q is not None
        if step % 8 == 0:
            engine.place_order(buy(f"m{step}", "3000"))
        elif step % 8 == 2:
            engine.place_order(sell(f"l{step}", "1500", str(q.ask_px + D("0.0050")), reduce_only=True))
        elif step % 8 == 4:
            engine.place_order(buy(f"b{step}", "2000", str(q.bid_px - D("0.0030")), post_only=True))
        elif step % 8 == 6:
            for o in engine.open_orders():
                engine.cancel_order(o.symbol, o.client_id)
            pos = engine.positions()
            if pos:
                engine.place_order(sell(f"x{step}", str(pos[0].qty), reduce_only=True))
        quotes += [(x.ts_ms, str(x.bid_px), str(x.ask_px), str(x.last_px)) for x in engine.advance(
            engine.now_ms + HOUR_MS // 2)]
        frames += [json.dumps(f, sort_keys=True) for f in engine.drain_frames()]
    return quotes, frames


# ------------------------------------------------------------------ determinism


def test_same_seed_gives_byte_identical_quotes_and_frames() -> None:
    first = scripted_run(synthetic(seed=7))
    second = scripted_run(synthetic(seed=7))
    assert first == second
    assert len(first[1]) > 30
    assert scripted_run(synthetic(seed=8))[0] != first[0]


def test_adding_symbols_does_not_change_a_symbols_prices() -> None:
    alone = synthetic(seed=3, names=("FET-USDT",)).advance(T0 + 2 * HOUR_MS)
    crowd = synthetic(seed=3, names=("BTC-USDT", "FET-USDT", "SOL-USDT")).advance(T0 + 2 * HOUR_MS)
    assert [q for q in crowd if q.symbol == FET] == alone
    assert {str(q.symbol) for q in crowd} == {"FET-USDT", "BTC-USDT", "SOL-USDT"}


def test_synthetic_prices_are_on_the_tick_with_the_configured_spread() -> None:
    engine = synthetic(seed=2, names=("BTC-USDT", "FET-USDT"))
    for q in engine.advance(T0 + 6 * HOUR_MS):
        tick = engine.contracts()[q.symbol].tick_size
        assert q.bid_px % tick == 0 and q.ask_px % tick == 0 and q.last_px % tick == 0
        assert q.ask_px - q.bid_px == 2 * tick and q.bid_px < q.last_px < q.ask_px


def test_quotes_arrive_every_interval_in_time_order() -> None:
    engine = synthetic(names=("BTC-USDT", "FET-USDT"))
    quotes = engine.advance(T0 + 60_000)
    assert [q.ts_ms for q in quotes] == [T0 + k * 10_000 for k in range(1, 7) for _ in range(2)]
    assert engine.now_ms == T0 + 60_000 and engine.next_event_ms() == T0 + 70_000
    with pytest.raises(ValueError, match="forward only"):
        engine.advance(T0)


# ------------------------------------------------------------------ taker fills


def test_market_order_walks_the_depth_with_a_rising_average(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501")], symbols=(fet(depth_lots=1_000),))
    engine.set_leverage(FET, 10)
    engine.drain_frames()
    result = engine.place_order(buy("e1", "2500"))
    assert result.accepted and len(result.venue_id or "") == 19 and result.venue_id.isdigit()  # type: ignore[union-attr]
    frames = engine.drain_frames()
    assert_frames_normalise(frames)
    reports = orders(frames)
    assert [o["x"] for o in reports] == ["NEW", "TRADE", "TRADE", "TRADE"]
    assert [o["X"] for o in reports] == ["NEW", "PARTIALLY_FILLED", "PARTIALLY_FILLED", "FILLED"]
    assert [o["z"] for o in reports[1:]] == ["1000", "2000", "2500"]
    avg = [D(o["ap"]) for o in reports[1:]]
    assert avg == [D("0.6501"), D("0.65015"), D("0.65018")] and avg == sorted(avg)
    assert all(o["p"] == "0.6501" for o in reports), "p is the protective reference price, not the fill price"
    assert len({o["t"] for o in reports[1:]}) == 3
    fills = engine.fills
    assert [f.px for f in fills] == [D("0.6501"), D("0.6502"), D("0.6503")]
    fee = sum((f.fee_usdt for f in fills), D(0))
    assert fee == D("0.81272500") and reports[-1]["n"] == "-0.81272500"  # taker 5 bp on 1625.45
    accounts = [f for f in frames if f["e"] == "ACCOUNT_UPDATE"]
    assert len(accounts) == 3 and accounts[-1]["a"]["P"][0]["pa"] == "2500"
    assert D(accounts[-1]["a"]["B"][0]["wb"]) == D(10000) - fee == engine.balance_usdt()
    [pos] = engine.positions()
    assert pos.qty == D(2500) and pos.entry_px == D("0.65018") and pos.leverage == 10


def test_market_order_beyond_the_book_expires_the_rest(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501")], symbols=(fet(depth_lots=100),), max_depth_levels=3)
    engine.place_order(sell("s1", "500"))
    reports = orders(engine.drain_frames())
    assert reports[-1]["X"] == "EXPIRED" and reports[-1]["z"] == "300" and reports[-1]["q"] == "500"
    events = normalise_frame({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": reports[-1]}).events
    assert isinstance(events[0], OrderFilled) and isinstance(events[1], OrderCancelled) and events[1].expired
    assert engine.positions()[0].qty == D(300) and engine.open_orders() == []


def test_marketable_limit_takes_up_to_its_price_and_rests_the_rest(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501")], symbols=(fet(depth_lots=100),))
    engine.place_order(buy("b1", "350", "0.6502"))
    reports = orders(engine.drain_frames())
    assert [o["z"] for o in reports] == ["0", "100", "200"] and reports[-1]["X"] == "PARTIALLY_FILLED"
    [open_order] = engine.open_orders()
    assert open_order.filled_qty == D(200) and open_order.price_px == D("0.6502")


# ------------------------------------------------------------------ refusals


def test_post_only_that_would_take_is_refused_without_trace(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501")])
    engine.drain_frames()
    result = engine.place_order(buy("p1", "100", "0.6501", post_only=True))
    assert result.venue_id is None and result.reject_code is RejectCode.POST_ONLY_WOULD_TAKE
    assert "would take" in result.reject_reason
    assert engine.drain_frames() == [] and engine.open_orders() == [] and engine.order("p1") is None
    assert engine.place_order(buy("p1", "100", "0.6500", post_only=True)).accepted


def test_reduce_only_that_would_open_or_enlarge_is_refused(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501")])
    assert engine.place_order(sell("r1", "100", reduce_only=True)).reject_code is RejectCode.REDUCE_ONLY
    engine.place_order(buy("e1", "100"))
    engine.drain_frames()
    assert engine.place_order(buy("r2", "10", reduce_only=True)).reject_code is RejectCode.REDUCE_ONLY
    assert engine.place_order(sell("r3", "101", reduce_only=True)).reject_code is RejectCode.REDUCE_ONLY
    assert engine.drain_frames() == []
    assert engine.place_order(sell("r4", "100", reduce_only=True)).accepted
    assert engine.positions() == []


def test_order_beyond_margin_is_refused_until_leverage_allows_it(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501")], initial_balance_usdt=D("100"))
    # 1000 FET x 0.6501 = 650.1 USDT > 100 x 5 (default leverage).
    result = engine.place_order(buy("e1", "1000"))
    assert result.reject_code is RejectCode.INSUFFICIENT_MARGIN and "margin is not enough" in result.reject_reason
    engine.set_leverage(FET, 7)
    engine.drain_frames()
    assert engine.place_order(buy("e1", "1000")).accepted
    # Closing needs no margin, even with the wallet tied up.
    assert engine.place_order(sell("x1", "1000")).accepted and engine.positions() == []


@pytest.mark.parametrize(("request_", "reason"), [
    (buy("a", "1.5"), "not a multiple of the lot size"),
    (buy("a", "100", "0.65005"), "not a multiple of the tick"),
    (buy("a", "2"), "below the minimum"),
    (buy("a", "100", symbol=BTC), "not listed"),
    (buy("bad id!", "100"), "client order id"),
    (OrderRequest("a", FET, "HOLD", OrderType.MARKET, D(100)), "BUY or SELL"),
    (buy("a", "100", post_only=True), "LIMIT orders only"),
])
def test_invalid_orders_are_refused_with_a_reason(tmp_path: Path, request_: OrderRequest, reason: str) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501")])
    engine.drain_frames()
    result = engine.place_order(request_)
    assert result.reject_code is RejectCode.INVALID and reason in result.reject_reason
    assert engine.drain_frames() == []


def test_duplicate_open_client_id_and_orders_before_any_quote_are_refused(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "t.csv", [(10_000, "FET-USDT", "0.6499", "0.6501")])
    engine = SimEngine(SimConfig(symbols=(fet(),), replay_path=path, start_ms=T0))
    assert "no quote yet" in engine.place_order(buy("a", "100")).reject_reason
    engine.advance(T0 + 10_000)
    assert engine.place_order(buy("a", "100", "0.6400")).accepted
    assert "already used" in engine.place_order(buy("a", "100", "0.6400")).reject_reason


def test_leverage_outside_the_contract_is_refused() -> None:
    engine = synthetic()
    with pytest.raises(ValueError, match=r"1\.\.50"):
        engine.set_leverage(FET, 51)


# ------------------------------------------------------------------ resting orders


def test_resting_limit_fills_partially_per_quote_at_its_own_price(tmp_path: Path) -> None:
    prices = [("0.6499", "0.6501"), ("0.6497", "0.6499"), ("0.6490", "0.6492"), ("0.6480", "0.6482"),
              ("0.6470", "0.6472")]
    engine = replay_engine(tmp_path, prices, symbols=(fet(resting_lots_per_quote=400),))
    engine.place_order(buy("m1", "1000", "0.6495"))
    engine.drain_frames()
    engine.advance(T0 + 10_000)  # ask 0.6499 does not cross 0.6495
    assert engine.drain_frames() == []
    engine.advance(T0 + 40_000)
    frames = engine.drain_frames()
    assert_frames_normalise(frames)
    reports = orders(frames)
    assert [(o["z"], o["X"]) for o in reports] == [("400", "PARTIALLY_FILLED"), ("800", "PARTIALLY_FILLED"),
                                                    ("1000", "FILLED")]
    assert all(o["ap"] == "0.6495" for o in reports), "a resting order fills at its limit price"
    assert [f.ts_ms for f in engine.fills] == [T0 + 20_000, T0 + 30_000, T0 + 40_000]
    assert all(f.is_maker and f.fee_usdt == f.qty * f.px * D("0.0002") for f in engine.fills)
    assert reports[-1]["n"] == "-0.12990000"


def test_better_priced_resting_order_fills_first(tmp_path: Path) -> None:
    prices = [("0.6499", "0.6501"), ("0.6480", "0.6482")]
    engine = replay_engine(tmp_path, prices, symbols=(fet(resting_lots_per_quote=300),))
    engine.place_order(buy("low", "300", "0.6490"))
    engine.place_order(buy("high", "300", "0.6495"))
    engine.advance(T0 + 10_000)
    assert [f.client_id for f in engine.fills] == ["high"]


def test_cancel_carries_the_final_cumulative_so_no_fill_follows(tmp_path: Path) -> None:
    prices = [("0.6499", "0.6501"), ("0.6490", "0.6492"), ("0.6480", "0.6482")]
    engine = replay_engine(tmp_path, prices, symbols=(fet(resting_lots_per_quote=300),))
    engine.place_order(buy("m1", "1000", "0.6495"))
    engine.advance(T0 + 10_000)
    engine.drain_frames()
    assert engine.cancel_order(FET, "m1") is True
    [cancel] = engine.drain_frames()
    o = cancel["o"]
    assert (o["x"], o["X"], o["z"], o["ap"], o["n"]) == ("CANCELED", "CANCELED", "300", "0.6495", "-0.03897000")
    assert o["t"] == engine.fills[-1].trade_id, "the cancel repeats the last execution's id: it books once"
    events = normalise_frame(cancel).events
    assert isinstance(events[0], OrderFilled) and events[0].cum_qty == D(300)
    assert isinstance(events[1], OrderCancelled)
    engine.advance(T0 + 20_000)
    assert engine.drain_frames() == [] and len(engine.fills) == 1
    assert engine.cancel_order(FET, "m1") is False and engine.cancel_order(FET, "nope") is False
    assert engine.order_history()[-1].status == "CANCELED"


def test_reduce_only_resting_order_expires_when_the_position_closes(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501"), ("0.6499", "0.6501")])
    engine.place_order(buy("e1", "500"))
    engine.place_order(sell("tp", "500", "0.6600", reduce_only=True, post_only=True))
    engine.drain_frames()
    engine.place_order(sell("x1", "500"))
    reports = orders(engine.drain_frames())
    assert [(o["c"], o["X"]) for o in reports][-1] == ("tp", "EXPIRED")
    assert engine.open_orders() == []


# ------------------------------------------------------------------ funding and accounting


def test_funding_every_eight_hours_on_open_positions() -> None:
    engine = synthetic(seed=5)
    engine.set_leverage(FET, 10)
    engine.place_order(buy("e1", "10000"))
    engine.drain_frames()
    engine.advance(T0 + 24 * HOUR_MS)
    frames = engine.drain_frames()
    funding = [f for f in frames if f["e"] == "ACCOUNT_UPDATE"]
    assert [f["E"] for f in funding] == [T0 + 8 * HOUR_MS, T0 + 16 * HOUR_MS, T0 + 24 * HOUR_MS]
    for frame, paid in zip(funding, engine.fundings, strict=True):
        assert frame["a"]["m"] == "FUNDING_FEE" and frame["a"]["P"] == []
        assert D(frame["a"]["B"][0]["bc"]) == paid.amount_usdt
        assert paid.amount_usdt == (-D(10000) * paid.mark_px * paid.rate).quantize(D("1e-8"))
        assert abs(paid.rate) <= D("0.0001")
        [event, _] = normalise_frame(frame).events
        assert isinstance(event, FundingFee) and event.amount_usdt == paid.amount_usdt
    assert engine.ledger().funding_usdt == sum((p.amount_usdt for p in engine.fundings), D(0)) != 0


def test_wallet_is_rebuilt_exactly_from_the_frames() -> None:
    engine = synthetic(seed=11)
    _, frames = scripted_run(engine, steps=60)
    decoded = [json.loads(f) for f in frames]
    assert_frames_normalise(decoded)
    ledger = engine.ledger()
    assert ledger.insurance_usdt == 0
    assert wallet_from_frames(D(10000), decoded) == engine.balance_usdt() == ledger.wallet_usdt
    assert ledger.wallet_usdt == (ledger.initial_usdt + ledger.realised_pnl_usdt - ledger.fees_usdt
                                  + ledger.funding_usdt)
    last_wallet = [f for f in decoded if f["e"] == "ACCOUNT_UPDATE"][-1]["a"]["B"][0]["wb"]
    assert D(last_wallet) == engine.balance_usdt()
    assert sum((f.fee_usdt for f in engine.fills), D(0)) == ledger.fees_usdt
    assert sum((f.realised_pnl_usdt for f in engine.fills), D(0)) == ledger.realised_pnl_usdt


def test_round_trip_pnl_is_qty_times_price_change_never_times_leverage(tmp_path: Path) -> None:
    engine = replay_engine(tmp_path, [("0.6499", "0.6501"), ("0.6599", "0.6601")])
    engine.set_leverage(FET, 20)
    engine.place_order(buy("e1", "1000"))
    engine.advance(T0 + 10_000)
    engine.place_order(sell("x1", "1000"))
    assert engine.ledger().realised_pnl_usdt == D(1000) * (D("0.6599") - D("0.6501"))


def test_liquidation_closes_at_the_bankruptcy_price_and_the_wallet_stays_non_negative(tmp_path: Path) -> None:
    prices = [("0.6499", "0.6501"), ("0.6400", "0.6402"), ("0.5000", "0.5002")]
    engine = replay_engine(tmp_path, prices, initial_balance_usdt=D("50"))
    engine.set_leverage(FET, 20)
    engine.place_order(buy("e1", "1000"))
    engine.drain_frames()
    engine.advance(T0 + 20_000)
    frames = engine.drain_frames()
    assert_frames_normalise(frames)
    [liq] = orders(frames)
    assert (liq["o"], liq["X"], liq["c"]) == ("LIQUIDATION", "FILLED", "")
    assert engine.positions() == [] and engine.balance_usdt() >= 0
    # The bankruptcy price is rounded to the tick in the account's favour: at most qty x tick is left.
    assert engine.balance_usdt() < D(1000) * D("0.0001") and engine.ledger().insurance_usdt == 0
    assert engine.fills[-1].px == D("0.6005")  # ceil((650.1 - 49.67495) / 1000) and engine.fills[-1].fee_usdt == 0


# ------------------------------------------------------------------ snapshot / restore


def test_snapshot_restore_continues_exactly_like_never_stopping() -> None:
    config = SimConfig(seed=21, symbols=default_symbols(["FET-USDT", "BTC-USDT"]))
    straight = SimEngine(config)
    straight.advance(straight.now_ms)
    first_q, first_f = scripted_run(straight, 0, 21)
    rest_q, rest_f = scripted_run(straight, 21, 30)

    stopped = SimEngine(config)
    stopped.advance(stopped.now_ms)
    assert scripted_run(stopped, 0, 21) == (first_q, first_f)
    stopped.place_order(buy("pending", "100", "0.1000"))  # an open order and undrained frames in the snapshot
    straight_pending = SimEngine.restore(config, json.loads(json.dumps(stopped.snapshot())))
    snap = json.loads(json.dumps(stopped.snapshot()))
    del stopped
    revived = SimEngine.restore(config, snap)
    assert revived.snapshot() == snap
    assert revived.open_orders() == straight_pending.open_orders() != []
    revived.cancel_order(FET, "pending")
    straight_pending.cancel_order(FET, "pending")
    assert revived.drain_frames() == straight_pending.drain_frames()
    assert scripted_run(revived, 21, 30) == scripted_run(straight_pending, 21, 30)

    # And without the extra order, the revived venue gives exactly the uninterrupted run's continuation.
    again = SimEngine(config)
    again.advance(again.now_ms)
    scripted_run(again, 0, 21)
    revived_again = SimEngine.restore(config, json.loads(json.dumps(again.snapshot())))
    assert scripted_run(revived_again, 21, 30) == (rest_q, rest_f)
    assert revived_again.ledger() == straight.ledger() and revived_again.fills == straight.fills


def test_restore_refuses_a_snapshot_of_another_config() -> None:
    engine = synthetic(seed=1)
    with pytest.raises(ValueError, match="different SimConfig"):
        SimEngine.restore(SimConfig(seed=2, symbols=default_symbols(["FET-USDT"])), engine.snapshot())


# ------------------------------------------------------------------ replay files


def test_replay_csv_drives_the_quotes_and_ends(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("ts_ms,symbol,bid,ask,last\n"
                    f"{T0},FETUSDT,0.6499,0.6501,0.6500\n"
                    f"{T0 + 5_000},BTC-USDT,42000.0,42000.2,\n"
                    f"{T0 + 9_000},fet-usdt,0.6500,0.6502,0.6502\n")
    config = SimConfig(symbols=(fet(), default_symbols(["BTC-USDT"])[0]), replay_path=path, start_ms=T0)
    engine = SimEngine(config)
    assert engine.next_event_ms() == T0
    quotes = engine.advance(T0 + HOUR_MS)
    assert [(q.symbol, q.ts_ms, q.last_px) for q in quotes] == [
        (FET, T0, D("0.6500")), (BTC, T0 + 5_000, D("42000.1")), (FET, T0 + 9_000, D("0.6502"))]
    assert engine.next_event_ms() is None


@pytest.mark.parametrize(("body", "where"), [
    (f"ts_ms,symbol,bid,ask\n{T0},FET-USDT,0.6499,0.6501\n{T0},FET-USDT,abc,0.6501\n", r"ticks.csv:3: column bid"),
    (f"ts_ms,symbol,bid,ask\n{T0 + 1},FET-USDT,0.6499,0.6501\n{T0},FET-USDT,0.6499,0.6501\n",
     r"ticks.csv:3: column ts_ms: .* goes back in time"),
    (f"ts_ms,symbol,bid,ask\n{T0},FET-USDT,0.64995,0.6501\n", r"ticks.csv:2: column bid: .* not a multiple of the"),
    (f"ts_ms,symbol,bid,ask\n{T0},DOGE-USDT,0.1,0.2\n", r"ticks.csv:2: column symbol: DOGE-USDT is not listed"),
    (f"ts_ms,symbol,bid,ask\n{T0},FET-USDT,0.6502,0.6501\n", r"ticks.csv:2: column ask: .*crossed"),
    (f"ts,symbol,bid,ask\n{T0},FET-USDT,0.6499,0.6501\n", r"ticks.csv:1: header: .* missing \['ts_ms'\]"),
    (f"ts_ms,symbol,bid,ask\n{T0},FET-USDT,0.6499\n", r"ticks.csv:2: row"),
    ("ts_ms,symbol,bid,ask\nsoon,FET-USDT,0.6499,0.6501\n", r"ticks.csv:2: column ts_ms"),
])
def test_malformed_replay_is_refused_naming_file_line_and_column(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(body)
    with pytest.raises(ReplayError, match=where):
        SimEngine(SimConfig(symbols=(fet(),), replay_path=path, start_ms=T0))


def test_replay_parquet_reads_like_csv(tmp_path: Path) -> None:
    import duckdb

    csv_path = write_replay(tmp_path / "ticks.csv", [(0, "FET-USDT", "0.6499", "0.6501"),
                                                     (10_000, "FET-USDT", "0.6490", "0.6492")])
    parquet_path = tmp_path / "ticks.parquet"
    duckdb.sql(f"COPY (SELECT ts_ms, symbol, CAST(bid AS VARCHAR) AS bid, CAST(ask AS VARCHAR) AS ask "
               f"FROM read_csv('{csv_path}', all_varchar=true)) TO '{parquet_path}' (FORMAT parquet)")
    from_csv = SimEngine(SimConfig(symbols=(fet(),), replay_path=csv_path, start_ms=T0)).advance(T0 + 10_000)
    from_parquet = SimEngine(SimConfig(symbols=(fet(),), replay_path=parquet_path, start_ms=T0)).advance(T0 + 10_000)
    assert from_parquet == from_csv and len(from_csv) == 2
    bad = tmp_path / "bad.parquet"
    duckdb.sql(f"COPY (SELECT {T0} AS ts_ms, 'FET-USDT' AS symbol, '-1' AS bid, '0.65' AS ask) TO '{bad}' "
               f"(FORMAT parquet)")
    with pytest.raises(ReplayError, match=r"bad.parquet:row 1: column bid"):
        SimEngine(SimConfig(symbols=(fet(),), replay_path=bad, start_ms=T0))


# ------------------------------------------------------------------ speed


def test_synthetic_feed_is_fast_enough_for_a_hundred_hours_per_second() -> None:
    engine = synthetic(seed=1)
    started = time.perf_counter()
    quotes = engine.advance(T0 + 100 * HOUR_MS)  # 36,000 quotes
    elapsed_s = time.perf_counter() - started
    assert len(quotes) == 36_000
    # The budget is a quarter of a wall second for 100 h; allow a loaded CI host four times that.
    assert elapsed_s < 1.0, f"100 h of one symbol took {elapsed_s:.3f} s"
