"""The fleet's tables (migration `0006_fleet`) and their queries: node status, transitions,
alert events, the monitor's cursor, and the record reads the fleet, API and dashboard need
(new heartbeats and wills by arrival, incidents filtered by node, camera, type and time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Float,
    Identity,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    cast,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from cityedge.cloud.store.engine import as_utc, reading
from cityedge.cloud.store.jsonrow import JsonRow
from cityedge.cloud.store.schema import NAME, TIMESTAMPTZ, metadata
from cityedge.cloud.store.schema import records as t_records
from cityedge.cloud.store.sqlite_insert import sqlite_datetime

__all__ = ["FleetStore", "HealthRow", "NodeRow", "RecordRow", "TransitionRow"]

_ID = BigInteger().with_variant(Integer(), "sqlite")
_JSON = JSON().with_variant(JSONB(), "postgresql")

fleet_nodes = Table(
    "fleet_nodes",
    metadata,
    Column("node", NAME, primary_key=True),
    Column("district", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("since", TIMESTAMPTZ, nullable=False),
    Column("reason", Text, nullable=False),
    Column("last_seen", TIMESTAMPTZ),
    Column("interval_s", Float),
    Column("heartbeat_id", String(36)),
    Column("heartbeat_ts", TIMESTAMPTZ),
    Column("heartbeat", _JSON),
)


def _node_log(name: str, *columns: Column[Any]) -> Table:
    """A log of a node's events, appended to: readers page through it by `id` and filter by `node`."""
    return Table(
        name, metadata, Column("id", _ID, Identity(), primary_key=True), *columns, Index(None, "node")
    )


fleet_transitions = _node_log(
    "fleet_transitions",
    Column("node", NAME, nullable=False),
    Column("district", NAME, nullable=False),
    Column("before", String(16)),
    Column("after", String(16), nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False),
    Column("reason", Text, nullable=False),
)
fleet_alerts = _node_log(
    "fleet_alerts",
    Column("alert", NAME, nullable=False),
    Column("node", NAME, nullable=False),
    Column("subject", String(127), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False),
    Column("summary", Text, nullable=False),
    Column("value", Float),
)
fleet_meta = Table(
    "fleet_meta",
    metadata,
    Column("key", NAME, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

_HEALTH_STREAMS: Final = ("heartbeat", "will")


_NODE_COLUMNS: Final = tuple(fleet_nodes.columns.keys())


def _sqlite_node_upsert() -> str:
    # Only constants and placeholders go into the text; every value is bound.
    cols = ", ".join(_NODE_COLUMNS)
    marks = ", ".join("?" * len(_NODE_COLUMNS))
    update = ", ".join(f"{c} = excluded.{c}" for c in _NODE_COLUMNS if c != "node")
    return f"INSERT INTO fleet_nodes ({cols}) VALUES ({marks}) ON CONFLICT (node) DO UPDATE SET {update}"  # noqa: S608


def _json_or_none(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


@dataclass(frozen=True)
class RecordRow(JsonRow):
    arrival: int
    id: str
    district: str
    node: str
    stream: str
    kind: str
    seq: int
    ts: datetime
    received_at: datetime
    body: dict[str, Any]


@dataclass(frozen=True)
class HealthRow:
    """A heartbeat or will as the monitor reads it: the body left as JSON text for a typed decode."""

    arrival: int
    id: str
    district: str
    node: str
    stream: str
    ts: datetime
    received_at: datetime
    body_json: str


@dataclass(frozen=True)
class NodeRow:
    node: str
    district: str
    status: str
    since: datetime
    reason: str
    last_seen: datetime | None
    interval_s: float | None
    heartbeat_id: str | None
    heartbeat_ts: datetime | None
    heartbeat: dict[str, Any] | None


@dataclass(frozen=True)
class TransitionRow(JsonRow):
    id: int
    node: str
    district: str
    before: str | None
    after: str
    at: datetime
    reason: str


_REC_COLS = (
    t_records.c.arrival,
    t_records.c.id,
    t_records.c.district,
    t_records.c.node,
    t_records.c.stream,
    t_records.c.kind,
    t_records.c.seq,
    t_records.c.ts,
    t_records.c.received_at,
    t_records.c.body,
)


def _record(row: Any) -> RecordRow:
    m = row._mapping
    return RecordRow(**{**m, "ts": as_utc(m["ts"]), "received_at": as_utc(m["received_at"])})


class FleetStore:
    """Safe to share between threads (one engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    # -- what the monitor reads and writes ---------------------------------------------------------------
    def health_records(self, after: int, limit: int = 5000) -> list[HealthRow]:
        """Heartbeats and wills that arrived after `after`, in arrival order."""
        c = t_records.c
        query = (
            select(c.arrival, c.id, c.district, c.node, c.stream, c.ts, c.received_at, cast(c.body, Text))
            .where(c.arrival > after, c.stream.in_(_HEALTH_STREAMS))
            .order_by(c.arrival)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [
                HealthRow(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]), as_utc(r[6]), r[7])
                for r in conn.execute(query)
            ]

    def last_arrival(self) -> int:
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.coalesce(func.max(t_records.c.arrival), 0))).scalar_one())

    def cursor(self, key: str) -> int | None:
        with reading(self.engine) as conn:
            value = conn.execute(select(fleet_meta.c.value).where(fleet_meta.c.key == key)).scalar()
        return None if value is None else int(value)

    def save(
        self, nodes: Sequence[dict[str, Any]], transitions: Sequence[dict[str, Any]],
        alerts: Sequence[dict[str, Any]], cursor: tuple[str, int] | None,
    ) -> None:  # fmt: skip
        """Node rows (upserted; `heartbeat` as JSON text), transitions and alert events (appended)
        and the cursor, in one transaction, so a restart never re-reads what it recorded nor skips
        what it did not. Everything is prepared before the write lock is taken: ingest waits on it."""
        if not (nodes or transitions or alerts or cursor):
            return
        node_rows = self._node_params(nodes)
        with self.engine.begin() as conn:
            if nodes and self._dialect == "sqlite":
                conn.exec_driver_sql(_sqlite_node_upsert(), node_rows)
            elif nodes:
                conn.execute(self._upsert(fleet_nodes, ["node"], nodes[0].keys()), node_rows)
            if transitions:
                conn.execute(fleet_transitions.insert(), list(transitions))
            if alerts:
                conn.execute(fleet_alerts.insert(), list(alerts))
            if cursor is not None:
                row = {"key": cursor[0], "value": cursor[1]}
                conn.execute(self._upsert(fleet_meta, ["key"], row.keys()), [row])

    def _upsert(self, table: Table, keys: list[str], columns: Any) -> Any:
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        stmt = dialect.insert(table)
        update = {c: stmt.excluded[c] for c in columns if c not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=update)

    def _node_params(self, nodes: Sequence[dict[str, Any]]) -> list[Any]:
        if self._dialect != "sqlite":
            return [{**n, "heartbeat": _json_or_none(n["heartbeat"])} for n in nodes]
        return [
            tuple(sqlite_datetime(v) if isinstance(v, datetime) else v for v in (n[c] for c in _NODE_COLUMNS))
            for n in nodes
        ]

    # -- what the API and the dashboard read --------------------------------------------------------------
    def nodes(self, node: str | None = None) -> list[NodeRow]:
        query = select(fleet_nodes).order_by(fleet_nodes.c.node)
        if node is not None:
            query = query.where(fleet_nodes.c.node == node)
        with reading(self.engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [
            NodeRow(
                **{
                    **r,
                    "since": as_utc(r["since"]),
                    "last_seen": as_utc(r["last_seen"]),
                    "heartbeat_ts": as_utc(r["heartbeat_ts"]),
                }
            )
            for r in rows
        ]

    def transitions(self, node: str | None = None, after: int = 0, limit: int = 500) -> list[TransitionRow]:
        rows = self._log_page(fleet_transitions, node, after, limit)
        return [TransitionRow(**{**r, "at": as_utc(r["at"])}) for r in rows]

    def last_transition_id(self) -> int:
        return self._last_id(fleet_transitions)

    def alert_events(self, after: int = 0, node: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._log_page(fleet_alerts, node, after, limit)
        return [{**r, "at": as_utc(r["at"]).isoformat()} for r in rows]

    def last_alert_id(self) -> int:
        return self._last_id(fleet_alerts)

    def _log_page(self, log: Table, node: str | None, after: int, limit: int) -> Sequence[RowMapping]:
        """Up to `limit` entries of a node log after the cursor `after`, oldest first."""
        query = select(log).where(log.c.id > after).order_by(log.c.id)
        if node is not None:
            query = query.where(log.c.node == node)
        with reading(self.engine) as conn:
            return conn.execute(query.limit(limit)).mappings().all()

    def _last_id(self, log: Table) -> int:
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.coalesce(func.max(log.c.id), 0))).scalar_one())

    def firing_alerts(self) -> list[dict[str, Any]]:
        """Alerts whose latest event is `firing`."""
        latest: dict[tuple[str, str, str], dict[str, Any]] = {}
        after = 0
        while True:
            page = self.alert_events(after, limit=5000)
            for event in page:
                latest[(event["alert"], event["node"], event["subject"])] = event
            if len(page) < 5000:
                break
            after = page[-1]["id"]
        return [e for e in latest.values() if e["state"] == "firing"]

    def events(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        node: str | None = None,
        camera: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        stream: str = "events",
    ) -> list[RecordRow]:
        """Records of one stream after the cursor `after` (an arrival), filtered."""
        c = t_records.c
        query = select(*_REC_COLS).where(c.stream == stream, c.arrival > after)
        if node is not None:
            query = query.where(c.node == node)
        if kind is not None:
            query = query.where(c.kind.in_((kind, f"incident.{kind}")))
        if camera is not None:
            query = query.where(c.body["camera"].as_string() == camera)
        if since is not None:
            query = query.where(c.ts >= since)
        if until is not None:
            query = query.where(c.ts < until)
        with reading(self.engine) as conn:
            return [_record(r) for r in conn.execute(query.order_by(c.arrival).limit(limit))]

    def latest_events(self, limit: int = 50, stream: str = "events") -> list[RecordRow]:
        c = t_records.c
        query = select(*_REC_COLS).where(c.stream == stream).order_by(c.arrival.desc()).limit(limit)
        with reading(self.engine) as conn:
            return [_record(r) for r in conn.execute(query)][::-1]

    def node_records(self, node: str, stream: str, since: datetime, limit: int = 2000) -> list[RecordRow]:
        """One node's records of a stream from `since` on (by the node's timestamp), oldest first."""
        c = t_records.c
        query = (
            select(*_REC_COLS)
            .where(c.node == node, c.stream == stream, c.ts >= since)
            .order_by(c.arrival.desc())
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [_record(r) for r in conn.execute(query)][::-1]
