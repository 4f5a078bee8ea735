"""The audit file's schema: tables, derived views, the schema version and forward migrations.

Tables (append-only except `runs.ended_*` and `meta`):

* `meta(key, value)`: `schema_version`, `created_local_ms`, `head_seq` / `head_hash` (the chain head recorded
  at each read-copy export and at close: a log that ends before its recorded head lost rows).
* `runs`: one row per `AuditLog.open`: redacted config, versions, seed, spec hashes, contracts, seed capital,
  kernel config (JSON text), start / end.
* `events`: the hash-chained log (`pink_fsm.audit.chain.CHAIN_COLUMNS` + `prev_hash`, `hash`).
* `ticks`: batched market quotes, outside the chain (see docs/audit.md).

Views (recreated on every open, so they always match the code): `inputs`, `commands`, `snapshots`, `fills`,
`orders`, `trades`. Prices and amounts in views are DECIMAL(38,18) casts of the exact text in `payload`.
"""

from __future__ import annotations

from typing import Final, Protocol

__all__ = [
    "DDL_V1",
    "SCHEMA_VERSION",
    "VIEWS",
    "create_schema",
    "create_views",
    "migrate",
]

SCHEMA_VERSION: Final = 2

DDL_V1: Final = (
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE runs (
        run_id BIGINT PRIMARY KEY, started_local_ms BIGINT NOT NULL, ended_local_ms BIGINT, end_reason VARCHAR,
        pid BIGINT, host VARCHAR, seed BIGINT, seed_capital_usdt VARCHAR, config VARCHAR, versions VARCHAR,
        spec_hashes VARCHAR, contracts VARCHAR, kernel_config VARCHAR)""",
    """CREATE TABLE events (
        seq BIGINT PRIMARY KEY, run_id BIGINT NOT NULL, venue_ts_ms BIGINT, local_ts_ms BIGINT NOT NULL,
        kind VARCHAR NOT NULL, machine VARCHAR, from_state VARCHAR, event VARCHAR NOT NULL, to_state VARCHAR,
        trade_seq BIGINT, client_id VARCHAR, venue_id VARCHAR, payload VARCHAR NOT NULL,
        prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL)""",
)
"""Schema version 1 (the first draft): no transition id or outcome per event, no ticks table. Kept so the
forward migration can be tested on a real version-1 file."""

_V1_TO_V2: Final = (
    "ALTER TABLE events ADD COLUMN transition_id INTEGER",
    "ALTER TABLE events ADD COLUMN outcome VARCHAR",
    """CREATE TABLE ticks (
        tick_id BIGINT NOT NULL, run_id BIGINT NOT NULL, venue_ts_ms BIGINT, local_ts_ms BIGINT NOT NULL,
        symbol VARCHAR NOT NULL, bid_px VARCHAR, ask_px VARCHAR, last_px VARCHAR)""",
)

MIGRATIONS: Final = {1: _V1_TO_V2}
"""from_version -> statements that take a file to from_version + 1 (run in one transaction each)."""

_DEC: Final = "DECIMAL(38,18)"


def _num(path: str) -> str:
    return f"TRY_CAST(json_extract_string(payload, '{path}') AS {_DEC})"


def _text(path: str) -> str:
    return f"json_extract_string(payload, '{path}')"


VIEWS: Final = {
    "inputs": "SELECT * FROM events WHERE kind = 'input'",
    "commands": "SELECT * FROM events WHERE kind IN ('command', 'sent')",
    "snapshots": f"""SELECT seq, run_id, local_ts_ms, {_text('$.reason')} AS reason,
        json_extract(payload, '$.snapshot') AS snapshot FROM events WHERE kind = 'checkpoint'""",
    "fills": f"""SELECT seq, run_id, venue_ts_ms, local_ts_ms, trade_seq, client_id, venue_id,
        {_text('$.event.ref.symbol')} AS symbol, {_text('$.event.exec_id')} AS exec_id,
        {_num('$.event.cum_qty')} AS cum_qty, {_num('$.event.cum_quote_usdt')} AS cum_quote_usdt,
        {_num('$.event.cum_fee_usdt')} AS cum_fee_usdt,
        TRY_CAST(json_extract(payload, '$.event.is_maker') AS BOOLEAN) AS is_maker,
        outcome, outcome = 'OK' AS booked, from_state, to_state
        FROM events WHERE kind = 'input' AND event = 'OrderFilled'""",
    "orders": f"""WITH placed AS (
            SELECT seq, run_id, local_ts_ms, trade_seq, client_id, {_text('$.command.symbol')} AS symbol,
                {_text('$.command.role')} AS role, {_text('$.command.side')} AS side,
                {_num('$.command.qty')} AS qty, TRY_CAST(json_extract(payload, '$.command.qty_lots') AS BIGINT)
                AS qty_lots, TRY_CAST(json_extract(payload, '$.command.reduce_only') AS BOOLEAN) AS reduce_only
            FROM events WHERE kind = 'command' AND event = 'PlaceOrder'
            QUALIFY row_number() OVER (PARTITION BY client_id ORDER BY seq DESC) = 1),
        activity AS (
            SELECT client_id, max(venue_id) AS venue_id, max(seq) AS last_seq,
                arg_max(event, seq) FILTER (WHERE kind = 'input' AND outcome = 'OK') AS last_event,
                bool_or(event = 'OrderCancelled' AND {_text('$.event.expired')} = 'true') AS expired,
                max({_num('$.event.cum_qty')}) FILTER (WHERE event = 'OrderFilled' AND outcome = 'OK') AS filled_qty
            FROM events WHERE kind IN ('input', 'sent') AND client_id IS NOT NULL GROUP BY client_id)
        SELECT p.client_id, a.venue_id, p.trade_seq, p.symbol, p.role, p.side, p.qty, p.qty_lots, p.reduce_only,
            CASE
                WHEN a.last_event = 'OrderFilled' AND a.filled_qty >= p.qty THEN 'FILLED'
                WHEN a.last_event = 'OrderFilled' THEN 'PARTIALLY_FILLED'
                WHEN a.last_event = 'OrderCancelled' AND a.expired THEN 'EXPIRED'
                WHEN a.last_event = 'OrderCancelled' THEN 'CANCELLED'
                WHEN a.last_event = 'OrderRejected' THEN 'REJECTED'
                WHEN a.last_event = 'OrderAccepted' THEN 'ACCEPTED'
                ELSE 'PLACED' END AS status,
            coalesce(a.filled_qty, 0) AS filled_qty, p.seq AS placed_seq, p.local_ts_ms AS placed_local_ms,
            coalesce(a.last_seq, p.seq) AS last_seq, p.run_id
        FROM placed p LEFT JOIN activity a USING (client_id)""",
    # Upsert by trade_seq within a run: a later RecordTrade for the same trade supersedes the earlier one
    # (docs/design.md, "Terminal record"); `records` counts how many were written. A trade_seq names a trade
    # within one kernel's life only (a run that could not restore a snapshot counts from 1 again), so the key
    # is (run_id, trade_seq).
    "trades": f"""WITH recs AS (
            SELECT *, count(*) OVER (PARTITION BY run_id, trade_seq) AS records FROM events
            WHERE kind = 'command' AND event = 'RecordTrade'
            QUALIFY row_number() OVER (PARTITION BY run_id, trade_seq ORDER BY seq DESC) = 1),
        written AS (
            SELECT run_id, trade_seq, max(seq) AS written_seq FROM events
            WHERE kind = 'input' AND event = 'TradeWritten' AND outcome = 'OK' GROUP BY run_id, trade_seq)
        SELECT r.trade_seq, {_text('$.command.symbol')} AS symbol, {_text('$.command.side')} AS side,
            TRY_CAST(json_extract(payload, '$.command.qty_lots') AS BIGINT) AS qty_lots,
            {_num('$.command.entry_vwap_px')} AS entry_vwap_px,
            {_num('$.command.realised_pnl_usdt')} AS realised_pnl_usdt, {_num('$.command.fees_usdt')} AS fees_usdt,
            {_num('$.command.realised_pnl_usdt')} - {_num('$.command.fees_usdt')} AS net_pnl_usdt,
            r.records, r.seq AS record_seq, r.local_ts_ms AS closed_local_ms, w.written_seq IS NOT NULL AS written,
            r.run_id
        FROM recs r LEFT JOIN written w USING (run_id, trade_seq)""",
}


class Executor(Protocol):
    def execute(self, query: str, parameters: object = None) -> object: ...


def create_schema(conn: Executor, created_local_ms: int) -> None:
    """A new file at SCHEMA_VERSION: version 1, then every forward migration (one path, always tested)."""
    for statement in DDL_V1:
        conn.execute(statement)
    for version in sorted(MIGRATIONS):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?), ('created_local_ms', ?)",
                 [str(SCHEMA_VERSION), str(created_local_ms)])


def migrate(conn: Executor, from_version: int) -> list[int]:
    """Apply the forward migrations from `from_version` to SCHEMA_VERSION; returns the versions passed."""
    passed = []
    for version in range(from_version, SCHEMA_VERSION):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version + 1)])
        passed.append(version + 1)
    return passed


def create_views(conn: Executor) -> None:
    for name, body in VIEWS.items():
        conn.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
