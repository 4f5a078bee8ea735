"""Hypothesis properties of the reference policy (derandomized, no example database): whatever the quotes, the
slot and the configuration, every decision is well-formed, and the same inputs give the same decisions."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pink_fsm.kernel.leverage import exchange_leverage
from pink_fsm.kernel.values import Side, Symbol
from pink_fsm.policy import ReferencePolicy, ReferencePolicyConfig
from pink_fsm.ports import Action, Decision, MarketView, Quote, SlotView

SYMBOLS = [Symbol("FET", "USDT"), Symbol("BTC", "USDT"), Symbol("ETH", "USDT")]
D = Decimal
PROPS = settings(max_examples=60, deadline=None, derandomize=True, database=None)

configs = st.builds(
    ReferencePolicyConfig,
    lookback_short_ticks=st.integers(1, 3),
    lookback_long_ticks=st.integers(4, 12),
    entry_z=st.sampled_from([0.5, 1.0, 1.5]),
    full_z=st.sampled_from([2.0, 3.5]),
    strategy_max_leverage=st.sampled_from([D("0.5"), D(1), D("2.5"), D(5), D(8)]),
    leverage_boost=st.sampled_from([D("0.1"), D(1), D("1.7"), D(3)]),
    allow_long=st.booleans(),
    max_spread_bps=st.sampled_from([D(1), D(10), D(1000)]),
)

# a step: which symbol quotes, its move in bps (wild moves included), a half spread, and a slot scenario
steps = st.lists(st.tuples(st.integers(0, len(SYMBOLS) - 1), st.integers(-500, 500), st.integers(0, 30),
                           st.sampled_from(["flat", "flat_frozen", "entering", "holding", "exit_pending"]),
                           st.sampled_from([D(0), D(1), D("1000"), D("1e9")]), st.booleans()),
                 min_size=1, max_size=120)


def slot_for(kind: str, ts_ms: int, capital_usdt: Decimal, side_short: bool) -> SlotView:
    side = Side.SHORT if side_short else Side.LONG
    if kind in ("flat", "flat_frozen"):
        return SlotView(ts_ms, "IDLE", True, kind == "flat", None, Side.NONE, D(0), D(0), 0, D(0), capital_usdt,
                        False)
    if kind == "entering":
        return SlotView(ts_ms, "ENTRY_WORKING", False, False, SYMBOLS[0], side, D(0), D(0), 0, D(0), capital_usdt,
                        False)
    return SlotView(ts_ms, "POSITION_OPEN", False, False, SYMBOLS[0], side, D(3), D(100), 0, D(0), capital_usdt,
                    kind == "exit_pending")


def run(config: ReferencePolicyConfig, script: list[tuple[int, int, int, str, Decimal, bool]]
        ) -> list[tuple[SlotView, MarketView, Decision]]:
    policy = ReferencePolicy(config)
    px = {s: D(100) for s in SYMBOLS}
    quotes: dict[Symbol, Quote] = {}
    out = []
    for i, (k, move_bps, half_spread_bps, kind, capital_usdt, side_short) in enumerate(script):
        ts_ms = (i + 1) * 10_000
        symbol = SYMBOLS[k]
        px[symbol] = max(D("0.0001"), px[symbol] * (1 + D(move_bps) / 10_000))
        half = px[symbol] * half_spread_bps / 10_000
        quotes[symbol] = Quote(ts_ms, symbol, px[symbol] - half, px[symbol] + half, px[symbol])
        market = MarketView(ts_ms, dict(quotes), symbol)
        slot = slot_for(kind, ts_ms, capital_usdt, side_short)
        out.append((slot, market, policy.decide(market, slot)))
    return out


@PROPS
@given(configs, steps)
def test_every_decision_is_well_formed(config: ReferencePolicyConfig,
                                       script: list[tuple[int, int, int, str, Decimal, bool]]) -> None:
    for slot, market, d in run(config, script):
        if d.action is Action.ENTER:
            assert slot.flat and slot.entries_allowed
            assert d.symbol is not None and d.symbol in market.quotes and d.side in (Side.LONG, Side.SHORT)
            assert config.allow_long or d.side is Side.SHORT
            assert isinstance(d.qty, Decimal) and d.qty.is_finite() and d.qty > 0
            assert isinstance(d.conviction, Decimal)
            assert D("0.5") <= config.leverage_min <= d.conviction <= config.strategy_max_leverage <= D(8)
            whole = exchange_leverage(d.conviction, venue_max=125, strategy_max=config.strategy_max_leverage)
            notional_usdt = d.qty * market.quotes[d.symbol].mid_px
            assert notional_usdt <= slot.capital_usdt * min(d.conviction, D(whole)) * (1 + D("1e-20"))
        elif d.action is Action.EXIT:
            assert not slot.flat and not slot.exit_pending and slot.open_qty > 0
            assert d.symbol == slot.symbol and d.side is slot.side and d.qty is None
            assert d.urgent is (d.reason == "STOP") and d.reason in ("STOP", "TAKE_PROFIT", "MAX_HOLD")
        else:
            assert d.action is Action.HOLD and d.qty is None


@PROPS
@given(configs, steps)
def test_same_inputs_same_decisions(config: ReferencePolicyConfig,
                                    script: list[tuple[int, int, int, str, Decimal, bool]]) -> None:
    first = [d for _, _, d in run(config, script)]
    assert first == [d for _, _, d in run(config, script)]
