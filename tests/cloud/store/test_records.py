"""The record store, the same tests on SQLite and PostgreSQL: idempotent inserts keyed by
record id, arrival order, raw JSON kept verbatim, migrations that are safe to repeat."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityedge.cloud.store import (
    IngestRecord,
    QuarantinedItem,
    RecordStore,
    StoreRejectedError,
    StoreUnavailableError,
    head_revision,
    sqlite_insert,
)
from cityedge.protocol import encode_envelope
from cityedge.protocol.errors import ConfigError
from tests.support.cloud import DISTRICT, envelope, pg_admin, pg_schema, record

NOW = datetime(2026, 11, 26, 6, 30, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[RecordStore]:
    s = RecordStore.open(store_url)
    yield s
    s.close()


def test_inserted_records_come_back_with_every_field(store: RecordStore) -> None:
    rec = record("events", seq=7, kind="incident.wrong_way", body={"lane": 3, "speed": 12.5, "tags": ["a"]})
    result = store.insert([rec], NOW)
    assert (result.inserted, result.duplicates) == (1, 0)
    [got] = store.records()
    assert (got.id, got.district, got.node, got.stream, got.seq, got.kind, got.v) == (
        rec.id, DISTRICT, rec.node, "events", 7, "incident.wrong_way", 1,
    )  # fmt: skip
    assert got.ts == rec.ts and got.ts.tzinfo is not None and got.ts.utcoffset() == timedelta(0)
    assert got.received_at == NOW
    assert got.body == {"lane": 3, "speed": 12.5, "tags": ["a"]}
    assert got.raw.encode() == rec.raw


def test_a_timestamp_with_another_offset_is_stored_as_the_same_instant_in_utc(store: RecordStore) -> None:
    local = datetime(2026, 11, 26, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    store.insert([record(ts=local)], NOW.astimezone(timezone(timedelta(hours=-5))))
    [got] = store.records()
    assert got.ts == local and got.ts.tzinfo == UTC
    assert got.received_at == NOW and got.received_at.tzinfo == UTC


def test_a_redelivered_record_is_ignored_and_counted_as_duplicate(store: RecordStore) -> None:
    first = [record(seq=i) for i in range(1, 6)]
    assert store.insert(first, NOW).inserted == 5
    again = store.insert([*first[2:], record(seq=6)], NOW)
    assert (again.inserted, again.duplicates) == (1, 3)
    assert dict(again.inserted_by_stream) == {"events": 1}
    assert [r.seq for r in store.records()] == [1, 2, 3, 4, 5, 6]


def test_the_same_record_twice_in_one_insert_is_stored_once(store: RecordStore) -> None:
    rec = record()
    result = store.insert([rec, rec], NOW)
    assert (result.inserted, result.duplicates) == (1, 1)
    assert len(store.records()) == 1


def test_records_come_back_in_arrival_order_and_filter_by_node_and_stream(store: RecordStore) -> None:
    arrived = [
        record("telemetry", seq=2), record("events", seq=1), record("telemetry", seq=1, node="edge-node-002"),
        record("telemetry", seq=3), record("heartbeat", seq=1),
    ]  # fmt: skip
    store.insert(arrived[:2], NOW)
    store.insert(arrived[2:], NOW)
    everything = store.records()
    assert [r.id for r in everything] == [r.id for r in arrived]
    assert all(a.arrival < b.arrival for a, b in itertools.pairwise(everything))
    assert [r.seq for r in store.records(node="edge-node-001", stream="telemetry")] == [2, 3]
    assert [r.node for r in store.records(stream="telemetry")] == [
        "edge-node-001",
        "edge-node-002",
        "edge-node-001",
    ]
    assert len(store.records(limit=2)) == 2


def test_counts_are_per_stream_with_a_total(store: RecordStore) -> None:
    assert store.counts() == {"total": 0}
    store.insert([record("events"), record("telemetry", 1), record("telemetry", 2)], NOW)
    assert store.counts() == {"events": 1, "telemetry": 2, "total": 3}


def test_unknown_fields_from_newer_nodes_are_kept_in_raw(store: RecordStore) -> None:
    env = envelope()
    raw = encode_envelope(env)[:-1] + b',"priority_hint":"high","geo":{"lat":52.5}}'
    store.insert([IngestRecord.from_envelope(env, DISTRICT, raw)], NOW)
    [got] = store.records()
    kept = msgspec.json.decode(got.raw)
    assert kept["priority_hint"] == "high" and kept["geo"] == {"lat": 52.5}
    assert got.raw.encode() == raw


def test_an_insert_the_database_refuses_stores_nothing_of_its_batch(store: RecordStore) -> None:
    # seq beyond 64 bits: valid JSON and a valid envelope, but no backend column holds it.
    batch = [record(seq=1), record(seq=2**70), record(seq=3)]
    with pytest.raises(StoreRejectedError, match="insert of 3 records failed"):
        store.insert(batch, NOW)
    assert store.records() == []
    assert store.insert([batch[0], batch[2]], NOW).inserted == 2


def test_what_could_not_be_stored_is_kept_raw_with_its_reason(store: RecordStore) -> None:
    whole = QuarantinedItem(
        topic="ce/v1/x/y/up/z", reason="bad_json", detail="invalid batch: ...", raw=b"\xff{"
    )
    single = QuarantinedItem(
        topic="ce/v1/corridor-a/edge-node-001/up/events", reason="bad_ts", detail="ts out of range",
        raw=b'{"id":"a","seq":3,"ts":"0001-01-01T00:00:00+01:00"}', district=DISTRICT, node="edge-node-001",
        stream="events", record_id="a", seq=3,
    )  # fmt: skip
    store.quarantine([whole, single], NOW)
    got = store.quarantined()
    assert [(q.reason, q.topic, q.raw, q.size) for q in got] == [
        ("bad_json", whole.topic, b"\xff{", 2), ("bad_ts", single.topic, single.raw, len(single.raw)),
    ]  # fmt: skip
    [ts] = store.quarantined(reason="bad_ts", node="edge-node-001")
    assert (ts.record_id, ts.seq, ts.stream, ts.detail, ts.received_at) == (
        "a",
        3,
        "events",
        "ts out of range",
        NOW,
    )
    assert store.quarantine_counts() == {"bad_json": 1, "bad_ts": 1}


def test_the_first_revision_is_0001_records_so_later_ones_can_build_on_it() -> None:
    from alembic.script import ScriptDirectory

    from cityedge.cloud.store.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    [base] = scripts.get_bases()
    assert base == "0001_records"
    assert [r.revision for r in scripts.walk_revisions()][-1] == "0001_records"


def test_migrating_again_changes_nothing_and_keeps_the_data(store_url: str) -> None:
    with RecordStore.open(store_url) as first:
        first.insert([record()], NOW)
    with RecordStore.open(store_url) as second:
        assert second.revision() == head_revision()
        assert second.counts()["total"] == 1


def test_two_processes_migrating_a_fresh_database_at_once_both_succeed(store_url: str) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            RecordStore.open(store_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with RecordStore.open(store_url) as store:
        assert store.revision() == head_revision()


def test_an_unsupported_database_url_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"mysql://u:\*\*\*@h/db: only sqlite and postgresql"):
        RecordStore.open("mysql://u:secret@h/db")
    with pytest.raises(ConfigError, match="not a URL"):
        RecordStore.open("no url at all")


def test_an_unreachable_database_is_unavailable_not_rejected() -> None:
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:1/nothing"):
        RecordStore.open("postgresql://postgres:pw@127.0.0.1:1/nothing?connect_timeout=2")


def test_pages_forward_from_an_arrival_already_seen(store: RecordStore) -> None:
    store.insert([record(seq=i) for i in range(1, 6)], NOW)
    first = store.records(limit=2)
    rest = store.records(after=first[-1].arrival)
    assert [r.seq for r in first] == [1, 2] and [r.seq for r in rest] == [3, 4, 5]
    assert store.records(after=rest[-1].arrival) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(0, 11), max_size=8), min_size=1, max_size=6))
def test_any_sequence_of_batches_with_repeats_stores_each_record_once(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[int]]
) -> None:
    pool = [record(seq=i) for i in range(12)]
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'cloud.db'}"
    with RecordStore.open(url) as store:
        results = [store.insert([pool[i] for i in b], NOW) for b in batches]
        sent = [i for b in batches for i in b]
        first_arrivals = list(dict.fromkeys(sent))
        assert sum(r.inserted for r in results) == len(first_arrivals)
        assert sum(r.duplicates for r in results) == len(sent) - len(first_arrivals)
        assert [r.id for r in store.records()] == [pool[i].id for i in first_arrivals]


def test_a_store_whose_postgresql_connections_were_killed_reconnects_on_the_next_insert(pg_url: str) -> None:
    import psycopg

    app = f"cityedge-test-{uuid.uuid4().hex[:8]}"
    with pg_schema(pg_url, application_name=app) as url, RecordStore.open(url) as store:
        store.insert([record()], NOW)
        with psycopg.connect(pg_admin(pg_url), autocommit=True) as conn:
            [killed] = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (app,),
            ).fetchall()
        assert killed[0] >= 1
        assert store.insert([record()], NOW).inserted == 1
        assert store.counts()["total"] == 2


def test_an_insert_larger_than_one_statement_keeps_every_record_in_order(store: RecordStore) -> None:
    many = [record("telemetry", seq=i) for i in range(1, sqlite_insert.CHUNK * 2 + 7)]
    store.insert(many[:10], NOW)
    result = store.insert(many, NOW)
    assert (result.inserted, result.duplicates) == (len(many) - 10, 10)
    stored = store.records()
    assert [r.seq for r in stored] == [r.seq for r in many]
    assert len({r.arrival for r in stored}) == len(many)


def test_two_writers_racing_on_the_same_records_store_each_once_on_postgresql(pg_url: str) -> None:
    # The COPY fast path meets the other writer's uncommitted rows; the loser falls back to
    # the staging table and ON CONFLICT, and the counts still add up.
    pool = [record("telemetry", seq=i) for i in range(1, 401)]
    halves = [pool[:300], pool[100:]]  # 200 records in common
    barrier = threading.Barrier(2)
    results: list[tuple[int, int]] = []
    with pg_schema(pg_url) as url, RecordStore.open(url) as a, RecordStore.open(url) as b:

        def write(store: RecordStore, batch: list[IngestRecord]) -> None:
            barrier.wait()
            for k in range(0, len(batch), 50):
                r = store.insert(batch[k : k + 50], NOW)
                results.append((r.inserted, r.duplicates))

        threads = [threading.Thread(target=write, args=(s, h)) for s, h in zip((a, b), halves, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(i for i, _ in results) == 400 and sum(d for _, d in results) == 200
        assert sorted(r.seq for r in a.records()) == list(range(1, 401))


def test_a_batch_with_one_stored_record_in_the_middle_keeps_the_rest_in_order(store: RecordStore) -> None:
    batch = [record("telemetry", seq=i) for i in range(1, 8)]
    store.insert([batch[3]], NOW)
    result = store.insert(batch, NOW)
    assert (result.inserted, result.duplicates, result.inserted_by_stream) == (6, 1, {"telemetry": 6})
    assert [r.seq for r in store.records()] == [4, 1, 2, 3, 5, 6, 7]
