"""Properties of the simulated venue over random order sequences (Hypothesis): exact accounting, frames that
always normalise, cumulative reports that never go back, and reduce-only fills that never flip a position."""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal as D
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sim_helpers import FET, assert_frames_normalise, buy, fet, sell, wallet_from_frames

from pink_adapters.sim import FeedParams, SimConfig, SimEngine

# A jumpy FET with a thin book, small wallet and one-minute funding: walks, partial fills, margin refusals,
# funding and liquidations all happen within a few dozen steps.
CONFIG = SimConfig(
    seed=0,
    symbols=(fet(depth_lots=400, resting_lots_per_quote=250, annual_vol=4.0),),
    initial_balance_usdt=D("100"),
    default_leverage=20,
    funding_interval_ms=60_000,
    funding_rate_max_abs=D("0.001"),
    max_depth_levels=4,
    feed=FeedParams(jumps_per_day=300.0, jump_sigma=0.03),
)

op = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 12)),
    st.tuples(st.sampled_from(["buy", "sell"]), st.integers(4, 2_000), st.none(), st.booleans(), st.just(False)),
    st.tuples(st.sampled_from(["buy", "sell"]), st.integers(4, 2_000), st.integers(-30, 30), st.booleans(),
              st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("leverage"), st.integers(1, 50)),
    # Reduce-only closes of a part (quarters) or more than all (5/4, refused) of the position.
    st.tuples(st.just("close"), st.integers(1, 5), st.one_of(st.none(), st.integers(-20, 20))),
)


def run(seed: int, ops: list[tuple[Any, ...]]) -> tuple[SimEngine, list[dict[str, Any]], set[str]]:
    engine = SimEngine(attrs.evolve(CONFIG, seed=seed))
    engine.advance(engine.now_ms)
    frames: list[dict[str, Any]] = []
    reduce_only_ids: set[str] = set()
    for n, step in enumerate(ops):
        kind = step[0]
        if kind == "advance":
            engine.advance(engine.now_ms + step[1] * 10_000)
        elif kind == "cancel":
            live = engine.open_orders()
            if live:
                engine.cancel_order(FET, live[step[1] % len(live)].client_id)
        elif kind == "leverage":
            engine.set_leverage(FET, step[1])
        elif kind == "close":
            positions = engine.positions()
            quote = engine.quote(FET)
            if positions and quote is not None:
                qty = max(positions[0].qty * step[1] // 4, D(1))
                px = None if step[2] is None else str(max(quote.last_px + step[2] * D("0.0001"), D("0.0001")))
                make = sell if positions[0].side.value == "LONG" else buy
                if engine.place_order(make(f"c{n}", str(qty), px, reduce_only=True)).accepted:
                    reduce_only_ids.add(f"c{n}")
        else:
            _, lots, offset_ticks, reduce_only, post_only = step
            quote = engine.quote(FET)
            assert quote is not None
            px = None if offset_ticks is None else str(max(quote.last_px + offset_ticks * D("0.0001"), D("0.0001")))
            make = buy if kind == "buy" else sell
            cid = f"o{n}"
            result = engine.place_order(make(cid, str(lots), px, reduce_only=reduce_only, post_only=post_only))
            if result.accepted and reduce_only:
                reduce_only_ids.add(cid)
        frames += engine.drain_frames()
    return engine, frames, reduce_only_ids


def check_accounting(engine: SimEngine, frames: list[dict[str, Any]]) -> None:
    assert_frames_normalise(frames)
    ledger = engine.ledger()
    assert ledger.wallet_usdt == engine.balance_usdt() >= 0
    assert ledger.wallet_usdt == (ledger.initial_usdt + ledger.realised_pnl_usdt - ledger.fees_usdt
                                  + ledger.funding_usdt + ledger.insurance_usdt)
    # Kernel-independent: the user stream alone rebuilds the wallet (the insurance cover is not on the stream).
    assert wallet_from_frames(ledger.initial_usdt, frames) + ledger.insurance_usdt == engine.balance_usdt()
    # The net position is the signed sum of the fills.
    net = sum((f.qty if f.side == "BUY" else -f.qty for f in engine.fills), D(0))
    positions = engine.positions()
    assert net == (positions[0].qty * (1 if positions[0].side.value == "LONG" else -1) if positions else 0)


def check_reports(frames: list[dict[str, Any]], reduce_only_ids: set[str]) -> None:
    last_cum: dict[str, tuple[D, D]] = {}
    final: set[str] = set()
    pa = D(0)
    pending_reduce_only = False
    for frame in frames:
        if frame["e"] == "ORDER_TRADE_UPDATE":
            o = frame["o"]
            assert o["i"] not in final, f"a report after the final one: {json.dumps(o)}"
            cum_qty, cum_fee = D(o["z"]), -D(o["n"])
            before_qty, before_fee = last_cum.get(o["i"], (D(0), D(0)))
            assert cum_qty >= before_qty and cum_fee >= before_fee and cum_qty <= D(o["q"])
            assert (o["x"] in ("TRADE", "CALCULATED")) == (cum_qty > before_qty)
            last_cum[o["i"]] = (cum_qty, cum_fee)
            if o["X"] in ("FILLED", "CANCELED", "EXPIRED"):
                final.add(o["i"])
            pending_reduce_only = o["x"] == "TRADE" and o["c"] in reduce_only_ids
        elif frame["e"] == "ACCOUNT_UPDATE" and frame["a"]["m"] == "ORDER":
            new_pa = D(frame["a"]["P"][0]["pa"])
            if pending_reduce_only:
                assert pa * new_pa >= 0 and abs(new_pa) < abs(pa), f"reduce-only moved {pa} -> {new_pa}"
            pa = new_pa
            pending_reduce_only = False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ops=st.lists(op, min_size=5, max_size=40))
def test_wallet_equals_initial_plus_realised_minus_fees_plus_funding(seed: int, ops: list[tuple[Any, ...]]) -> None:
    engine, frames, _ = run(seed, ops)
    check_accounting(engine, frames)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ops=st.lists(op, min_size=5, max_size=40))
def test_reports_are_cumulative_final_once_and_reduce_only_never_flips(seed: int, ops: list[tuple[Any, ...]]) -> None:
    _, frames, reduce_only_ids = run(seed, ops)
    check_reports(frames, reduce_only_ids)


def random_ops(rng: random.Random, count: int) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(count):
        kind = rng.choice(["advance", "advance", "buy", "sell", "close", "close", "cancel", "leverage"])
        if kind == "advance":
            ops.append((kind, rng.randint(1, 12)))
        elif kind in ("buy", "sell"):
            limit = rng.random() < 0.5
            ops.append((kind, rng.randint(4, 2_000), rng.randint(-30, 30) if limit else None, rng.random() < 0.2,
                        limit and rng.random() < 0.5))
        elif kind == "close":
            ops.append((kind, rng.randint(1, 5), rng.choice([None, rng.randint(-20, 20)])))
        elif kind == "cancel":
            ops.append((kind, rng.randint(0, 5)))
        else:
            ops.append((kind, rng.randint(1, 50)))
    return ops


def test_seeded_campaign_reaches_every_venue_behaviour_and_keeps_the_books_exact() -> None:
    """Long random sequences (Hypothesis keeps its lists short): the same checks, plus proof that the campaign
    reached liquidations, partial resting fills, expiries, reduce-only fills and funding."""
    seen: Counter[str] = Counter()
    for seed in range(12):
        engine, frames, reduce_only_ids = run(seed, random_ops(random.Random(seed), 150))
        check_accounting(engine, frames)
        check_reports(frames, reduce_only_ids)
        for f in frames:
            if f["e"] == "ORDER_TRADE_UPDATE":
                o = f["o"]
                seen[f"{o['o']}:{o['X']}"] += 1
                seen["reduce-only fill"] += o["x"] == "TRADE" and o["c"] in reduce_only_ids
            else:
                seen[f"{f['e']}:{f.get('a', {}).get('m')}"] += 1
    for behaviour in ("LIQUIDATION:FILLED", "LIMIT:PARTIALLY_FILLED", "LIMIT:FILLED", "LIMIT:CANCELED",
                      "LIMIT:EXPIRED", "MARKET:EXPIRED", "MARKET:PARTIALLY_FILLED", "reduce-only fill",
                      "ACCOUNT_UPDATE:FUNDING_FEE"):
        assert seen[behaviour] > 0, f"the campaign never reached {behaviour}: {dict(seen)}"
