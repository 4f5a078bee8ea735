"""Market data of the simulated venue: a seeded synthetic multi-asset feed, or a replay of recorded ticks.

Both feeds hand the engine batches of `Tick`s: the symbol's index in `SimConfig.symbols`, the bid, ask and last
prices as integer numbers of ticks (what the matching works on), and the `Quote` (Decimal prices) that the
runtime sees. Prices are integers inside so that matching a resting order is an integer comparison; a price
becomes a Decimal once per quote, through a small per-symbol cache.

The synthetic feed draws each symbol from its own `random.Random` stream, seeded by the run's seed and the
symbol's name, so adding or removing a symbol never changes another symbol's prices.
"""

from __future__ import annotations

import csv
import math
import random
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import duckdb

from pink_adapters.sim.config import SimConfig, SimSymbol
from pink_fsm.kernel.values import Symbol, parse_decimal
from pink_fsm.ports import Quote

__all__ = ["Feed", "ReplayError", "ReplayFeed", "SyntheticFeed", "Tick", "load_replay", "make_feed"]

YEAR_MS = 365 * 24 * 3_600_000
DAY_MS = 24 * 3_600_000
# A replay is held in memory (about 100 bytes a row): beyond this many rows, split the file.
MAX_REPLAY_ROWS = 20_000_000
# Decimal prices cached per symbol; a random walk revisits the same few thousand ticks for hours.
PX_CACHE_SIZE = 8_192
_CSV_COLUMNS = ("ts_ms", "symbol", "bid", "ask")
_OPTIONAL_COLUMNS = ("last",)


class Tick(NamedTuple):
    """One quote as the engine consumes it: integer tick prices for matching, the Quote for the runtime."""

    sym_index: int  # the symbol's position in SimConfig.symbols
    bid_ticks: int
    ask_ticks: int
    quote: Quote


class Feed(Protocol):
    """What the engine needs from a feed: the time of the next batch, the batch, and a JSON-able state."""

    def peek_ts(self) -> int | None: ...

    def pop(self) -> list[Tick]: ...

    def state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


class _PxCache:
    """int ticks -> Decimal price, bounded: cleared when full (cheaper than LRU bookkeeping per quote)."""

    __slots__ = ("_map", "_tick")

    def __init__(self, tick_size: Decimal) -> None:
        self._tick = tick_size
        self._map: dict[int, Decimal] = {}

    def px(self, ticks: int) -> Decimal:
        value = self._map.get(ticks)
        if value is None:
            if len(self._map) >= PX_CACHE_SIZE:
                self._map.clear()
            value = self._map[ticks] = self._tick * ticks
        return value


class _Walk:
    """One symbol's random walk: log price `x` as a float, stepped by GBM plus Poisson jumps."""

    __slots__ = ("cache", "hs_ticks", "index", "inv_tick", "jump_p", "jump_sigma", "mu_dt", "rng", "sig_dt", "symbol",
                 "x")

    def __init__(self, index: int, s: SimSymbol, config: SimConfig) -> None:
        feed = config.feed
        vol = feed.annual_vol if s.annual_vol is None else s.annual_vol
        dt_years = config.quote_interval_ms / YEAR_MS
        self.index = index
        self.symbol = s.symbol
        # A str seed is hashed with SHA-512 by `random`: stable across processes and PYTHONHASHSEED.
        self.rng = random.Random(f"pink-sim:{config.seed}:{s.symbol}:feed")
        self.x = math.log(float(s.start_px))
        self.inv_tick = float(1 / s.contract.tick_size)
        self.hs_ticks = feed.half_spread_ticks
        self.mu_dt = (feed.drift_annual - 0.5 * vol * vol) * dt_years
        self.sig_dt = vol * math.sqrt(dt_years)
        self.jump_p = min(1.0, feed.jumps_per_day * config.quote_interval_ms / DAY_MS)
        self.jump_sigma = feed.jump_sigma
        self.cache = _PxCache(s.contract.tick_size)

    def tick(self, ts_ms: int, step: bool) -> Tick:
        if step:
            rng = self.rng
            x = self.x + self.mu_dt + self.sig_dt * rng.gauss(0.0, 1.0)
            if self.jump_p and rng.random() < self.jump_p:
                x += self.jump_sigma * rng.gauss(0.0, 1.0)
            self.x = x
        hs = self.hs_ticks
        # The mid never falls below one spread above zero: a price must stay positive.
        mid = max(round(math.exp(self.x) * self.inv_tick), hs + 1)
        px = self.cache.px
        quote = Quote(ts_ms, self.symbol, px(mid - hs), px(mid + hs), px(mid))
        return Tick(self.index, mid - hs, mid + hs, quote)


class SyntheticFeed:
    """Every symbol quotes at `start_ms + k * quote_interval_ms` (k = 0, 1, ...), in config order; the first
    quote of each symbol is its configured start price."""

    def __init__(self, config: SimConfig) -> None:
        self._start_ms = config.start_ms
        self._interval_ms = config.quote_interval_ms
        self._end_ms = config.end_ms
        self._walks = [_Walk(i, s, config) for i, s in enumerate(config.symbols)]
        self._step = 0

    def peek_ts(self) -> int | None:
        ts_ms = self._start_ms + self._step * self._interval_ms
        return None if self._end_ms is not None and ts_ms > self._end_ms else ts_ms

    def pop(self) -> list[Tick]:
        ts_ms = self._start_ms + self._step * self._interval_ms
        step = self._step > 0
        self._step += 1
        return [w.tick(ts_ms, step) for w in self._walks]

    def state(self) -> dict[str, Any]:
        return {
            "kind": "synthetic",
            "step": self._step,
            "walks": [{"x": w.x, "rng": _rng_state(w.rng)} for w in self._walks],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "synthetic" or len(state["walks"]) != len(self._walks):
            raise ValueError("snapshot feed: not the state of this synthetic feed (kind or symbol count differ)")
        self._step = int(state["step"])
        for walk, saved in zip(self._walks, state["walks"], strict=True):
            walk.x = float(saved["x"])
            walk.rng.setstate(_rng_from_state(saved["rng"]))


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def _rng_from_state(saved: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss_next = saved
    return (int(version), tuple(int(v) for v in internal), None if gauss_next is None else float(gauss_next))


# ------------------------------------------------------------------ replay


class ReplayError(ValueError):
    """A replay file that cannot be used; the message names file:line and the column."""


class _Row(NamedTuple):
    ts_ms: int
    sym_index: int
    bid_ticks: int
    ask_ticks: int
    last_ticks: int


def _ticks(raw: object, where: str, column: str, s: SimSymbol) -> int:
    try:
        px = parse_decimal(raw, column, positive=True)
    except ValueError as exc:
        raise ReplayError(f"{where}: column {column}: {exc}") from None
    ticks, rest = divmod(px, s.contract.tick_size)
    if rest != 0:
        raise ReplayError(f"{where}: column {column}: {px} is not a multiple of the tick {s.contract.tick_size} "
                          f"of {s.symbol}")
    return int(ticks)


def _row(record: dict[str, object], where: str, index_of: dict[Symbol, int], config: SimConfig,
         prev_ts_ms: int) -> _Row:
    raw_ts = record["ts_ms"]
    try:
        ts_ms = int(str(raw_ts).strip())
    except ValueError:
        raise ReplayError(f"{where}: column ts_ms: expected integer milliseconds, got {raw_ts!r}") from None
    if ts_ms < 0:
        raise ReplayError(f"{where}: column ts_ms: must be >= 0, got {ts_ms}")
    if ts_ms < prev_ts_ms:
        raise ReplayError(f"{where}: column ts_ms: {ts_ms} goes back in time (previous row {prev_ts_ms})")
    try:
        symbol = Symbol.parse(record["symbol"])
    except ValueError as exc:
        raise ReplayError(f"{where}: column symbol: {exc}") from None
    if symbol not in index_of:
        raise ReplayError(f"{where}: column symbol: {symbol} is not listed in SimConfig.symbols")
    index = index_of[symbol]
    s = config.symbols[index]
    bid = _ticks(record["bid"], where, "bid", s)
    ask = _ticks(record["ask"], where, "ask", s)
    if bid > ask:
        raise ReplayError(f"{where}: column ask: the ask is below the bid (crossed book)")
    raw_last = record.get("last")
    # Without a last trade price, the mid rounded down to a tick stands in for it.
    last = (bid + ask) // 2 if raw_last in (None, "") else _ticks(raw_last, where, "last", s)
    return _Row(ts_ms, index, bid, ask, last)


def _check_columns(columns: list[str], where: str) -> None:
    missing = [c for c in _CSV_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in _CSV_COLUMNS + _OPTIONAL_COLUMNS]
    if missing or unknown:
        raise ReplayError(f"{where}: header: expected columns ts_ms,symbol,bid,ask[,last]; "
                          f"missing {missing or 'none'}, unknown {unknown or 'none'}")


def _load_csv(path: Path, config: SimConfig, index_of: dict[Symbol, int]) -> list[_Row]:
    rows: list[_Row] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        _check_columns([c.strip() for c in reader.fieldnames or []], f"{path}:1")
        reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
        prev_ts_ms = 0
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if None in record or any(record.get(c) is None for c in _CSV_COLUMNS):
                raise ReplayError(f"{where}: row: expected {len(reader.fieldnames)} fields")
            if len(rows) >= MAX_REPLAY_ROWS:
                raise ReplayError(f"{where}: more than {MAX_REPLAY_ROWS} rows; split the file")
            row = _row(record, where, index_of, config, prev_ts_ms)
            prev_ts_ms = row.ts_ms
            rows.append(row)
    return rows


def _load_parquet(path: Path, config: SimConfig, index_of: dict[Symbol, int]) -> list[_Row]:
    con = duckdb.connect()
    try:
        result = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
        columns = [d[0] for d in result.description]
        _check_columns(columns, f"{path}:schema")
        rows: list[_Row] = []
        prev_ts_ms = 0
        for n, values in enumerate(result.fetchall(), start=1):
            if len(rows) >= MAX_REPLAY_ROWS:
                raise ReplayError(f"{path}:row {n}: more than {MAX_REPLAY_ROWS} rows; split the file")
            record = dict(zip(columns, values, strict=True))
            row = _row(record, f"{path}:row {n}", index_of, config, prev_ts_ms)
            prev_ts_ms = row.ts_ms
            rows.append(row)
        return rows
    except duckdb.Error as exc:
        raise ReplayError(f"{path}: not a readable Parquet file: {exc}") from None
    finally:
        con.close()


def load_replay(path: Path, config: SimConfig) -> list[_Row]:
    """Validated rows of a replay file (CSV, or Parquet by its `.parquet` suffix), in file order."""
    if not path.is_file():
        raise ReplayError(f"{path}: no such replay file")
    index_of = {s.symbol: i for i, s in enumerate(config.symbols)}
    if path.suffix.lower() in (".parquet", ".pq"):
        return _load_parquet(path, config, index_of)
    return _load_csv(path, config, index_of)


class ReplayFeed:
    """Recorded ticks, one per batch, in file order (timestamps must not decrease)."""

    def __init__(self, config: SimConfig, path: Path) -> None:
        self._path = path
        self._rows = load_replay(path, config)
        self._symbols = [s.symbol for s in config.symbols]
        self._caches = [_PxCache(s.contract.tick_size) for s in config.symbols]
        self._pos = 0

    def peek_ts(self) -> int | None:
        return self._rows[self._pos].ts_ms if self._pos < len(self._rows) else None

    def pop(self) -> list[Tick]:
        row = self._rows[self._pos]
        self._pos += 1
        px = self._caches[row.sym_index].px
        quote = Quote(row.ts_ms, self._symbols[row.sym_index], px(row.bid_ticks), px(row.ask_ticks), px(row.last_ticks))
        return [Tick(row.sym_index, row.bid_ticks, row.ask_ticks, quote)]

    def state(self) -> dict[str, Any]:
        return {"kind": "replay", "pos": self._pos, "rows": len(self._rows)}

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "replay" or int(state["rows"]) != len(self._rows):
            raise ValueError(f"snapshot feed: not the state of a replay of {self._path} (kind or row count differ)")
        self._pos = int(state["pos"])


def make_feed(config: SimConfig) -> SyntheticFeed | ReplayFeed:
    return SyntheticFeed(config) if config.replay_path is None else ReplayFeed(config, config.replay_path)
