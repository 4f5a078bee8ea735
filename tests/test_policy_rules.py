"""The reference policy's rules, one behaviour per test: DC gate, alpha sizer, exits, picker, decision gating,
configuration errors and determinism (issue 6; DEFECTS.md D10, D11 and the DC gate)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from decimal import Decimal

import pytest

from pink_fsm.kernel.values import Side, Symbol
from pink_fsm.policy import (
    AlphaSizer,
    AssetHistory,
    AssetPicker,
    DcGate,
    ExitRule,
    ReferencePolicy,
    ReferencePolicyConfig,
    exit_signal,
)
from pink_fsm.policy.picker import MAX_QUOTE_AGE_MS
from pink_fsm.ports import Action, Decision, MarketView, Quote, SlotView

FET, BTC, ETH = Symbol("FET", "USDT"), Symbol("BTC", "USDT"), Symbol("ETH", "USDT")
D = Decimal
TICK_MS = 10_000


def quote(symbol: Symbol, ts_ms: int, px: Decimal | str, spread_px: Decimal | str = "0") -> Quote:
    mid = D(px)
    half = D(spread_px) / 2
    return Quote(ts_ms, symbol, mid - half, mid + half, mid)


def flat_slot(ts_ms: int = 0, capital_usdt: Decimal | int = 1000, entries_allowed: bool = True) -> SlotView:
    return SlotView(ts_ms, "IDLE", True, entries_allowed, None, Side.NONE, D(0), D(0), 0, D(0), D(capital_usdt),
                    False)


def open_slot(symbol: Symbol, side: Side, entry_px: Decimal | str, entry_ts_ms: int = 0, *,
              exit_pending: bool = False, open_qty: Decimal | int = 10) -> SlotView:
    return SlotView(entry_ts_ms, "POSITION_OPEN", False, False, symbol, side, D(open_qty), D(entry_px), entry_ts_ms,
                    D(0), D(1000), exit_pending)


def feed(policy: ReferencePolicy, path: Iterable[tuple[Symbol, Decimal]], slot: SlotView | None = None,
         start_ms: int = 0) -> list[Decision]:
    """Quote each (symbol, price) in turn, one tick apart; the market view keeps every symbol's last quote."""
    quotes: dict[Symbol, Quote] = {}
    out = []
    for i, (symbol, px) in enumerate(path):
        ts_ms = start_ms + (i + 1) * TICK_MS
        quotes[symbol] = quote(symbol, ts_ms, px)
        out.append(policy.decide(MarketView(ts_ms, dict(quotes), symbol), slot or flat_slot(ts_ms)))
    return out


def falling_path(symbol: Symbol, n: int, *, start_px: str = "100", seed: int = 7, drop_bps: int = 30,
                 tail_ticks: int = 2) -> list[tuple[Symbol, Decimal]]:
    """A noisy walk, then a sharp fall over the last `tail_ticks` ticks: a strong SHORT signal at the end."""
    rng = random.Random(seed)
    px = float(start_px)
    out = []
    for i in range(n):
        px *= math.exp(rng.gauss(0, 4e-4))
        if i >= n - tail_ticks:
            px *= 1 - drop_bps / 10_000 / tail_ticks
        out.append((symbol, D(f"{px:.6f}")))
    return out


SMALL = ReferencePolicyConfig(lookback_short_ticks=2, lookback_long_ticks=20)

# ------------------------------------------------------------------ DC gate


def dc_gate_after(rise_px: str, lookback_ticks: int = 7) -> DcGate:
    gate = DcGate(lookback_ticks, D("0.75"))
    gate.observe(FET, D(10_000))
    for _ in range(lookback_ticks - 1):
        gate.observe(FET, D(9_990))  # the path between does not matter, only the ends
    gate.observe(FET, D(10_000) + D(rise_px))
    return gate


@pytest.mark.parametrize(("rise_px", "blocked"), [("0.7499", False), ("0.75", True), ("0.7501", True),
                                                  ("-5", False)])
def test_dc_gate_blocks_short_at_and_above_075_bps_over_7_ticks(rise_px: str, blocked: bool) -> None:
    gate = dc_gate_after(rise_px)
    assert gate.contradicts(FET, Side.SHORT) is blocked
    assert gate.rise_bps(FET) == D(rise_px)  # on a 10,000 base one price unit is one bp


def test_dc_gate_has_no_long_mirror() -> None:
    gate = dc_gate_after("-100")  # a fall, the mirror case
    assert not gate.contradicts(FET, Side.LONG)
    assert not dc_gate_after("100").contradicts(FET, Side.LONG)


def test_dc_gate_compares_exactly_7_ticks_back_and_allows_while_history_is_short() -> None:
    gate = DcGate(7, D("0.75"))
    for _ in range(7):  # 7 prices = only 6 ticks of history
        gate.observe(FET, D(10_000))
    gate.observe(FET, D(10_001))  # now 8 prices: 10,000 seven ticks back
    assert gate.contradicts(FET, Side.SHORT)
    short = DcGate(7, D("0.75"))
    for px in (10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_001):
        short.observe(FET, D(px))
    assert not short.contradicts(FET, Side.SHORT) and short.rise_bps(FET) is None
    gate.observe(FET, D(10_001))  # the oldest 10,000 drops out: compared with 10,000 (still rising 1 bp)
    assert gate.contradicts(FET, Side.SHORT)


def test_dc_gate_histories_are_per_asset() -> None:
    gate = DcGate(7, D("0.75"))
    for i in range(8):
        gate.observe(FET, D(10_000) + i)  # FET rising
        gate.observe(BTC, D(10_000) - i)  # BTC falling, interleaved tick by tick
    assert gate.contradicts(FET, Side.SHORT)
    assert not gate.contradicts(BTC, Side.SHORT)
    assert not gate.contradicts(ETH, Side.SHORT)  # never seen: no history, allowed


def dc_scenario(last_rise_px: str) -> Decision:
    """A SHORT signal whose last 7 ticks end `last_rise_px` above where they started (base 10,000): up five
    ticks, then a sharp fall over the last two (the short velocity is strongly negative)."""
    config = ReferencePolicyConfig(lookback_short_ticks=2, lookback_long_ticks=20, entry_z=1.0, full_z=2.0)
    policy = ReferencePolicy(config)
    base = [D(10_000) + (i % 2) for i in range(14)] + [D(10_000)]  # calm, ending at 10,000
    up = [D(10_000) + 30 * k for k in range(1, 6)]  # +150 bps over five ticks
    end = D(10_000) + D(last_rise_px)
    path = [*base, *up, (up[-1] + end) / 2, end]
    decisions = feed(policy, [(FET, px) for px in path])
    return decisions[-1]


def test_reference_policy_dc_gate_blocks_the_short_entry_at_the_boundary() -> None:
    blocked = dc_scenario("0.75")
    assert blocked.action is Action.HOLD and blocked.reason == "DC_CONTRADICT" and blocked.side is Side.SHORT
    allowed = dc_scenario("0.7499")
    assert allowed.action is Action.ENTER and allowed.side is Side.SHORT


# ------------------------------------------------------------------ alpha sizer


def test_sizer_range_is_05_to_8_and_the_curve_is_cubic_convex() -> None:
    config = ReferencePolicyConfig()
    sizer = AlphaSizer(config)
    strengths = [i / 20 for i in range(0, 200)]
    raw = [sizer.raw_leverage(s) for s in strengths]
    assert min(raw) == 0.5 and max(raw) == 8.0
    assert raw == sorted(raw)  # monotone
    inside = [sizer.raw_leverage(config.entry_z + (config.full_z - config.entry_z) * k / 10) for k in range(11)]
    second_diffs = [inside[k + 1] - 2 * inside[k] + inside[k - 1] for k in range(1, 10)]
    assert all(d > 0 for d in second_diffs)  # convex: weak signals get little
    assert inside[5] == pytest.approx(0.5 + 7.5 / 8)  # x = 1/2 -> x^3 = 1/8 of the range
    for s in strengths:
        assert D("0.5") <= sizer.conviction(s) <= D(8)
    assert sizer.conviction(float("nan")) == D("0.5")


def test_boost_multiplies_and_is_capped_at_the_strategy_max() -> None:
    config = ReferencePolicyConfig(leverage_boost=D(2), strategy_max_leverage=D(5))
    sizer = AlphaSizer(config)
    assert sizer.conviction(config.full_z) == D(5)  # 8 x 2 = 16, capped at 5
    assert sizer.conviction(0.0) == D("1.00")  # 0.5 x 2
    low = AlphaSizer(ReferencePolicyConfig(leverage_boost=D("0.1")))
    assert low.conviction(0.0) == D("0.5")  # 0.05 floored at leverage_min, as the original's max(0.5, ...)


def test_losses_shrink_the_size_and_a_win_resets_it() -> None:
    config = ReferencePolicyConfig()
    sizer = AlphaSizer(config)
    full = config.full_z
    sizer.record_close(D("-1"))
    assert sizer.conviction(full) == D("6.40")
    for _ in range(5):
        sizer.record_close(D("-1"))
    assert sizer.loss_streak == 3 and sizer.conviction(full) == D("4.09")  # 8 x 0.8^3, bounded streak
    sizer.record_close(D(0))  # a scratch changes nothing
    assert sizer.loss_streak == 3
    sizer.record_close(D("0.01"))
    assert sizer.conviction(full) == D("8.00")


@pytest.mark.parametrize(("conviction", "notional_lev"), [("2.4", "2"), ("2.6", "2.6"), ("2.5", "2"),
                                                          ("0.5", "0.5"), ("7.5", "7.5"), ("8", "8")])
def test_notional_never_exceeds_the_integer_exchange_leverage(conviction: str, notional_lev: str) -> None:
    sizer = AlphaSizer(ReferencePolicyConfig())
    assert sizer.notional_leverage(D(conviction)) == D(notional_lev)


# ------------------------------------------------------------------ exits

RULE = ExitRule(tp_bps=D(30), stop_bps=D(25), max_hold_ms=600_000)


@pytest.mark.parametrize(("side", "bid", "ask", "reason"), [
    (Side.LONG, "100.30", "100.31", "TAKE_PROFIT"),  # sells at the bid: +30 bps exactly
    (Side.LONG, "100.29", "100.31", None),
    (Side.LONG, "99.75", "99.76", "STOP"),  # -25 bps exactly
    (Side.LONG, "99.76", "99.77", None),
    (Side.SHORT, "99.69", "99.70", "TAKE_PROFIT"),  # buys back at the ask: +30 bps exactly
    (Side.SHORT, "99.69", "99.71", None),
    (Side.SHORT, "100.24", "100.25", "STOP"),
    (Side.SHORT, "100.23", "100.24", None),
])
def test_exit_take_profit_and_stop_at_exact_bps_of_entry(side: Side, bid: str, ask: str, reason: str | None) -> None:
    q = Quote(1_000, FET, D(bid), D(ask), D(bid))
    signal = exit_signal(RULE, side, D(100), 0, q, 1_000)
    assert (signal.reason if signal else None) == reason
    if signal is not None:
        assert signal.urgent is (reason == "STOP")


def test_exit_on_max_hold_at_exactly_the_limit() -> None:
    q = Quote(0, FET, D(100), D(100), D(100))
    assert exit_signal(RULE, Side.SHORT, D(100), 1_000, q, 600_999) is None
    signal = exit_signal(RULE, Side.SHORT, D(100), 1_000, q, 601_000)
    assert signal is not None and signal.reason == "MAX_HOLD" and not signal.urgent


def test_stop_exit_is_urgent_and_closes_the_active_leg() -> None:
    policy = ReferencePolicy()
    q = quote(FET, 5_000, "101")
    d = policy.decide(MarketView(5_000, {FET: q}, FET), open_slot(FET, Side.SHORT, "100"))
    assert d == Decision(Action.EXIT, symbol=FET, side=Side.SHORT, qty=None, urgent=True, reason="STOP")
    tp = policy.decide(MarketView(6_000, {FET: quote(FET, 6_000, "99")}, FET), open_slot(FET, Side.SHORT, "100"))
    assert tp.action is Action.EXIT and tp.reason == "TAKE_PROFIT" and not tp.urgent


def test_no_exit_while_an_exit_is_pending_or_before_the_entry_fills_or_without_the_positions_quote() -> None:
    policy = ReferencePolicy()
    market = MarketView(5_000, {FET: quote(FET, 5_000, "101")}, FET)
    assert policy.decide(market, open_slot(FET, Side.SHORT, "100", exit_pending=True)).action is Action.HOLD
    assert policy.decide(market, open_slot(FET, Side.SHORT, "100", open_qty=D(0))).action is Action.HOLD
    other = MarketView(6_000, {BTC: quote(BTC, 6_000, "1")}, BTC)  # never value FET at BTC's price
    assert policy.decide(other, open_slot(FET, Side.SHORT, "100")).action is Action.HOLD


# ------------------------------------------------------------------ picker


def warm_history(z: float) -> AssetHistory:
    history = AssetHistory(2, 4)
    for i in range(5):
        history.observe(i, 100.0)
    history.z = z  # the picker ranks by z; the signal itself is tested below
    return history


def make_picker(**overrides: object) -> AssetPicker:
    options: dict[str, object] = dict(entry_z=1.5, max_spread_bps=D(10), allow_short=True, allow_long=False,
                                      cooldown_after_loss_ms=300_000)
    options.update(overrides)
    return AssetPicker(**options)  # type: ignore[arg-type]


def quotes_at(ts_ms: int, *symbols: Symbol, spread_px: str = "0.01") -> dict[Symbol, Quote]:
    return {s: quote(s, ts_ms, "100", spread_px) for s in symbols}


def test_picker_ranks_by_signal_strength_and_breaks_ties_by_symbol() -> None:
    picker = make_picker()
    histories = {FET: warm_history(-2.0), BTC: warm_history(-3.0), ETH: warm_history(-3.0)}
    quotes = quotes_at(1_000, FET, BTC, ETH)
    ranked = picker.rank(histories, quotes, 1_000)
    assert [c.symbol for c in ranked] == [BTC, ETH, FET]
    assert all(c.side is Side.SHORT for c in ranked)
    assert picker.pick(histories, quotes, 1_000) == ranked[0]
    reordered = {ETH: histories[ETH], FET: histories[FET], BTC: histories[BTC]}
    assert picker.pick(reordered, quotes, 1_000) == ranked[0]  # arrival order never matters


def test_picker_filters_weak_cold_wide_stale_and_wrong_side_symbols() -> None:
    picker = make_picker()
    cold = AssetHistory(2, 4)
    cold.z = -9.0
    histories = {FET: warm_history(-1.4), BTC: warm_history(+4.0), ETH: cold}
    assert picker.rank(histories, quotes_at(1_000, FET, BTC, ETH), 1_000) == []  # LONG not allowed
    both = make_picker(allow_long=True)
    assert [(c.symbol, c.side) for c in both.rank(histories, quotes_at(1_000, FET, BTC), 1_000)] == \
        [(BTC, Side.LONG)]
    strong = {FET: warm_history(-3.0)}
    assert picker.pick(strong, quotes_at(1_000, FET, spread_px="0.1"), 1_000) is not None  # 10 bps: allowed
    assert picker.pick(strong, quotes_at(1_000, FET, spread_px="0.1001"), 1_000) is None  # wider: not
    assert picker.pick(strong, quotes_at(0, FET), MAX_QUOTE_AGE_MS) is not None
    assert picker.pick(strong, quotes_at(0, FET), MAX_QUOTE_AGE_MS + 1) is None  # stale
    assert picker.pick(strong, {}, 1_000) is None  # no quote


def test_picker_cools_a_symbol_down_after_a_loss_and_picks_the_next_best() -> None:
    picker = make_picker()
    histories = {FET: warm_history(-4.0), BTC: warm_history(-2.0)}
    picker.note_close(FET, D("-0.01"), ts_ms=1_000)
    for ts_ms, expected in ((1_000, BTC), (300_999, BTC), (301_000, FET)):
        candidate = picker.pick(histories, quotes_at(ts_ms, FET, BTC), ts_ms)
        assert candidate is not None and candidate.symbol is expected
    picker.note_close(BTC, D("5"), ts_ms=400_000)  # a win: no cool-down
    assert BTC not in picker.cooldown_until_ms


def test_policy_cool_down_uses_the_market_time_of_the_last_call() -> None:
    policy = ReferencePolicy(SMALL)
    feed(policy, falling_path(FET, 10))
    policy.on_trade_closed(FET, D("-3"))
    assert policy.picker.cooldown_until_ms[FET] == 10 * TICK_MS + SMALL.cooldown_after_loss_ms
    policy.on_trade_closed(FET, D("NaN"))  # malformed feedback is ignored, never raises
    assert policy.sizer.loss_streak == 1


def test_signal_is_negative_on_a_fall_positive_on_a_rise_and_zero_on_a_frozen_price() -> None:
    for sign in (-1, +1):
        history = AssetHistory(2, 20)
        for i in range(25):
            history.observe(i, 100.0 * (1 + sign * 0.001 * max(0, i - 21)) + (0.01 if i % 2 else 0.0))
        assert history.warm and sign * history.z > 3
    frozen = AssetHistory(2, 20)
    for i in range(25):
        frozen.observe(i, 100.0)
    assert frozen.warm and frozen.z == 0.0


# ------------------------------------------------------------------ decision gating


def strong_short_policy() -> tuple[ReferencePolicy, MarketView, int]:
    policy = ReferencePolicy(SMALL)
    path = falling_path(FET, 30)
    decisions = feed(policy, path[:-1])
    assert all(d.action is not Action.ENTER for d in decisions[:20])  # cold: no entry before warm-up
    ts_ms = 30 * TICK_MS
    market = MarketView(ts_ms, {FET: quote(FET, ts_ms, path[-1][1])}, FET)
    return policy, market, ts_ms


def test_enter_sizes_qty_from_capital_and_leverage_as_decimals() -> None:
    policy, market, ts_ms = strong_short_policy()
    d = policy.decide(market, flat_slot(ts_ms, capital_usdt=D(1000)))
    assert d.action is Action.ENTER and d.symbol == FET and d.side is Side.SHORT
    assert isinstance(d.qty, Decimal) and isinstance(d.conviction, Decimal)
    notional_lev = policy.sizer.notional_leverage(d.conviction)
    assert notional_lev == D(3) < d.conviction  # conviction 3.14 sets leverage 3 at the venue: size for 3
    notional_usdt = d.qty * market.quotes[FET].mid_px
    assert abs(notional_usdt - D(1000) * D("0.95") * notional_lev) < D("1e-20")


def test_no_enter_unless_flat_and_entries_allowed() -> None:
    policy, market, ts_ms = strong_short_policy()
    assert policy.decide(market, flat_slot(ts_ms, entries_allowed=False)).action is Action.HOLD
    pending_entry = SlotView(ts_ms, "ENTRY_WORKING", False, False, FET, Side.SHORT, D(0), D(0), 0, D(0), D(1000),
                             False)
    assert policy.decide(market, pending_entry).action is Action.HOLD
    holding_btc = open_slot(BTC, Side.SHORT, "100", ts_ms)
    assert policy.decide(market, holding_btc).action is Action.HOLD  # FET signal, BTC position: no second entry
    assert policy.decide(market, flat_slot(ts_ms, capital_usdt=D(0))).reason == "NO_CAPITAL"
    assert policy.decide(market, flat_slot(ts_ms)).action is Action.ENTER


def test_a_repeated_or_older_quote_is_not_a_new_tick() -> None:
    policy = ReferencePolicy(SMALL)
    feed(policy, falling_path(FET, 25))
    history = policy.histories[FET]
    z, ts_ms = history.z, history.last_ts_ms
    stale = MarketView(ts_ms + 1, {FET: quote(FET, ts_ms, "1")}, FET)
    policy.decide(stale, flat_slot(ts_ms))
    assert history.z == z and history.last_ts_ms == ts_ms
    crossed = MarketView(ts_ms + 1, {FET: Quote(ts_ms + 1, FET, D(101), D(100), D(100))}, FET)
    policy.decide(crossed, flat_slot(ts_ms))
    assert history.last_ts_ms == ts_ms  # a crossed book is no observation


def test_universe_and_max_symbols_bound_what_is_tracked() -> None:
    policy = ReferencePolicy(ReferencePolicyConfig(universe=(FET,)))
    feed(policy, [(BTC, D(1)), (FET, D(1)), (ETH, D(1))])
    assert list(policy.histories) == [FET]
    bounded = ReferencePolicy(ReferencePolicyConfig(max_symbols=2))
    feed(bounded, [(BTC, D(1)), (FET, D(1)), (ETH, D(1))])
    assert list(bounded.histories) == [BTC, FET]


def random_walk(symbols: Sequence[Symbol], n: int, seed: int) -> list[tuple[Symbol, Decimal]]:
    rng = random.Random(seed)
    px = {s: 1.0 + i for i, s in enumerate(symbols)}
    out = []
    for i in range(n):
        s = symbols[i % len(symbols)]
        px[s] *= math.exp(rng.gauss(0, 8e-4))
        out.append((s, D(f"{px[s]:.6f}")))
    return out


def test_same_inputs_give_the_same_decisions() -> None:
    path = random_walk([FET, BTC, ETH], 3_000, seed=11)
    runs = [feed(ReferencePolicy(SMALL), path) for _ in range(2)]
    assert runs[0] == runs[1]
    assert sum(d.action is Action.ENTER for d in runs[0]) > 10  # the walk does trigger entries


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(("options", "message"), [
    ({"tp_bps": D(0)}, "tp_bps: must be a finite Decimal > 0"),
    ({"stop_bps": 25}, "stop_bps: must be a finite Decimal > 0, got 25"),  # ints are parsed by from_mapping
    ({"lookback_long_ticks": 0}, "lookback_long_ticks: must be a whole number > 0"),
    ({"lookback_short_ticks": 60}, "lookback_short_ticks (60) must be < lookback_long_ticks (60)"),
    ({"full_z": 1.0}, "full_z (1.0) must be > entry_z (1.5)"),
    ({"strategy_max_leverage": D(9)}, "strategy_max_leverage (9) must lie in [leverage_min, leverage_max]"),
    ({"leverage_min": D(9)}, "leverage_min (9) must be <= leverage_max (8.0)"),
    ({"allow_short": False}, "allow_short, allow_long: at least one side"),
    ({"capital_fraction": D("1.5")}, "capital_fraction: must be in (0, 1]"),
    ({"loss_shrink": D(2)}, "loss_shrink: must be in (0, 1]"),
    ({"dc_min_bps": D(-1)}, "dc_min_bps: must be a finite Decimal >= 0"),
    ({"allow_long": 1}, "allow_long: must be true or false"),
    ({"universe": (FET, FET)}, "universe: lists a symbol twice"),
    ({"max_hold_ms": 1.5}, "max_hold_ms: must be a whole number > 0"),
])
def test_config_errors_name_the_field(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        ReferencePolicyConfig(**options)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_config_from_mapping_parses_plain_values_and_names_bad_ones() -> None:
    config = ReferencePolicyConfig.from_mapping({"tp_bps": "45", "entry_z": 2, "universe": ["fetusdt", "BTC-USDT"],
                                                 "max_hold_ms": 60_000, "allow_long": True})
    assert config.tp_bps == D(45) and config.entry_z == 2.0 and config.universe == (FET, BTC) and config.allow_long
    for options, message in (({"tp": 1}, "unknown option(s) ['tp']"),
                             ({"tp_bps": "nan"}, "tp_bps: expected a finite number"),
                             ({"universe": "FET"}, "universe: expected a list of symbols"),
                             ({"universe": ["FET"]}, "universe: symbol: 'FET' is not BASE-USDT"),
                             ({"max_hold_ms": "soon"}, "max_hold_ms: expected a whole number"),
                             ({"allow_long": "yes"}, "allow_long: expected true or false")):
        with pytest.raises(ValueError) as info:
            ReferencePolicyConfig.from_mapping(options)
        assert message in str(info.value), str(info.value)
