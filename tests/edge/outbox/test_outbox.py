"""The outbox on a real SQLite file: seqs, exact bytes, overflow accounting, claims, acks, ttl, restarts."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from cityedge.edge.outbox import DEFAULT_POLICIES, Outbox, OutboxLimits, StreamPolicy
from cityedge.edge.outbox.metrics import register_outbox_metrics
from cityedge.edge.outbox.store import DiskFullError
from cityedge.protocol.acks import StreamAck
from cityedge.protocol.codec import decode_envelope
from cityedge.protocol.errors import OutboxError
from tests.edge.outbox.helpers import Clock, envelope, release, store_ack, wire_bytes

ROOMY = OutboxLimits(min_free_disk_bytes=0)
Opener = Callable[..., Outbox]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_outbox(tmp_path: Path, clock: Clock) -> Iterator[Opener]:
    opened: list[Outbox] = []

    def _open(limits: OutboxLimits = ROOMY, **kw: object) -> Outbox:
        ob = Outbox.open(tmp_path / "outbox.db", limits=limits, clock=clock, **kw)  # type: ignore[arg-type]
        opened.append(ob)
        return ob

    yield _open
    for ob in opened:
        ob.close()


def drain(ob: Outbox) -> list[tuple[str, int, bytes]]:
    out = []
    while (claimed := ob.claim(1000, 1 << 30)) is not None:
        out += [(c.stream, c.seq, c.payload) for c in claimed[1]]
        store_ack(ob, claimed[1])
    return out


def test_each_stream_numbers_its_records_from_one(open_outbox: Opener) -> None:
    ob = open_outbox()
    results = ob.append_many([envelope("telemetry"), envelope("events"), envelope("telemetry")])
    assert [(r.accepted, r.seq) for r in results] == [(True, 1), (True, 1), (True, 2)]
    assert ob.append(envelope("events")).seq == 2


def test_seqs_are_never_reused_after_acks_and_restarts(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.append_many([envelope() for _ in range(3)])
    drain(ob)
    ob.close()
    ob = open_outbox()
    assert ob.stats().streams["telemetry"].last_seq == 3
    assert ob.append(envelope()).seq == 4


def test_the_outbox_hands_out_exactly_the_bytes_it_committed(open_outbox: Opener) -> None:
    ob = open_outbox()
    env = envelope("events", speed=42.5)
    seq = ob.append(env).seq
    assert seq == 1
    ((stream, got_seq, payload),) = drain(ob)
    assert (stream, got_seq, payload) == ("events", 1, wire_bytes(env, 1))
    assert decode_envelope(payload) == msgspec.structs.replace(env, seq=1)


def test_a_redelivered_record_id_is_ignored_and_reported(open_outbox: Opener) -> None:
    ob = open_outbox()
    env = envelope()
    first, again_in_batch = ob.append_many([env, env])
    later = ob.append(env)
    assert first.accepted and first.seq == 1
    for dup in (again_in_batch, later):
        assert (dup.accepted, dup.reason, dup.seq) == (False, "duplicate", None)
    stats = ob.stats()
    assert stats.total_records == 1 and stats.streams["telemetry"].duplicates == 2
    assert stats.drops == {}


def test_drop_oldest_loses_exactly_the_counted_oldest_records(open_outbox: Opener) -> None:
    ob = open_outbox(OutboxLimits(max_records=10, min_free_disk_bytes=0))
    envs = [envelope("telemetry") for _ in range(25)]
    results = ob.append_many(envs[:12]) + [ob.append(e) for e in envs[12:]]
    assert all(r.accepted for r in results)
    assert sum(r.dropped for r in results) == 15
    assert ob.stats().drops == {("telemetry", "evicted"): 15}
    assert [seq for _, seq, _ in drain(ob)] == list(range(16, 26))


def test_reject_new_refuses_exactly_the_counted_records_and_keeps_the_old(open_outbox: Opener) -> None:
    ob = open_outbox(OutboxLimits(max_records=10, min_free_disk_bytes=0))
    results = ob.append_many([envelope("events") for _ in range(15)])
    refused = [r for r in results if not r.accepted]
    assert len(refused) == 5 and {(r.reason, r.seq, r.dropped) for r in refused} == {("full", None, 0)}
    assert ob.stats().drops == {("events", "full"): 5}
    assert [seq for _, seq, _ in drain(ob)] == list(range(1, 11))
    assert ob.append(envelope("events")).seq == 11  # refused records took no seq


def test_the_byte_bound_evicts_until_the_new_record_fits(open_outbox: Opener) -> None:
    probe = len(wire_bytes(envelope(pad=300), 1))
    ob = open_outbox(OutboxLimits(max_bytes=probe * 4, min_free_disk_bytes=0))
    ob.append_many([envelope(pad=300) for _ in range(4)])
    result = ob.append(envelope(pad=300 + 2 * probe))  # needs three records' room
    assert (result.accepted, result.dropped) == (True, 3)
    assert [seq for _, seq, _ in drain(ob)] == [4, 5]


def test_a_record_larger_than_the_whole_outbox_is_refused_without_evicting(open_outbox: Opener) -> None:
    ob = open_outbox(OutboxLimits(max_bytes=2000, min_free_disk_bytes=0))
    ob.append(envelope())
    result = ob.append(envelope(pad=3000))
    assert (result.accepted, result.reason) == (False, "full")
    assert ob.stats().drops == {("telemetry", "full"): 1} and ob.stats().total_records == 1


def test_drop_oldest_never_evicts_in_flight_or_other_streams_records(open_outbox: Opener) -> None:
    ob = open_outbox(OutboxLimits(max_records=4, min_free_disk_bytes=0))
    ob.append_many([envelope("telemetry") for _ in range(2)] + [envelope("events") for _ in range(2)])
    events, telemetry = ob.claim(10, 1 << 20), ob.claim(10, 1 << 20)
    assert events is not None and telemetry is not None
    assert (events[0], telemetry[0]) == ("events", "telemetry")
    release(ob, events[1])
    # Only telemetry's own records could make room, and they are all in flight.
    refused = ob.append(envelope("telemetry"))
    assert (refused.accepted, refused.reason) == (False, "full")
    release(ob, [telemetry[1][1]])
    accepted = ob.append(envelope("telemetry"))
    assert (accepted.accepted, accepted.dropped, accepted.seq) == (True, 1, 3)
    ob.release_all()
    left = sorted((s, q) for s, q, _ in drain(ob))
    assert left == [("events", 1), ("events", 2), ("telemetry", 1), ("telemetry", 3)]
    assert ob.stats().drops == {("telemetry", "full"): 1, ("telemetry", "evicted"): 1}


def test_under_the_free_disk_floor_every_stream_is_refused_and_counted(open_outbox: Opener) -> None:
    free = {"bytes": 10}
    ob = open_outbox(OutboxLimits(min_free_disk_bytes=1000), free_disk=lambda _p: free["bytes"])
    results = ob.append_many([envelope(s) for s in ("events", "telemetry", "heartbeat")])
    assert {(r.accepted, r.reason) for r in results} == {(False, "disk_floor")}
    assert ob.stats().drops == {(s, "disk_floor"): 1 for s in ("events", "telemetry", "heartbeat")}
    assert ob.stats().total_records == 0
    free["bytes"] = 10_000
    assert ob.append(envelope("events")).seq == 1


def test_a_disk_that_fills_up_under_sqlite_refuses_and_counts_without_raising(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.append(envelope())
    db = ob._storage._db  # type: ignore[attr-defined]  # fault injection: SQLite reports SQLITE_FULL past this many pages
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    results = ob.append_many([envelope(pad=5000) for _ in range(3)])
    assert {(r.accepted, r.reason) for r in results} == {(False, "disk_floor")}
    assert ob.stats().drops == {("telemetry", "disk_floor"): 3}
    db.execute("PRAGMA max_page_count = 1000000")
    assert ob.append(envelope()).seq == 2
    ob.close()
    assert open_outbox().stats().drops == {("telemetry", "disk_floor"): 3}


def test_an_ack_on_a_full_disk_keeps_the_records_for_another_send(
    open_outbox: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    ob = open_outbox()
    ob.append(envelope())
    claimed = ob.claim(1, 1 << 20)
    assert claimed is not None

    def full(*_args: object) -> None:
        raise DiskFullError("the disk is full")

    monkeypatch.setattr(ob._storage, "delete_stored", full)  # fault injection at the SQLite seam
    assert store_ack(ob, claimed[1]) == 0
    monkeypatch.undo()
    ob.release_all()
    again = ob.claim(1, 1 << 20)
    assert again is not None and again[1] == claimed[1]
    assert store_ack(ob, claimed[1]) == 1


def test_drop_counts_survive_a_restart(open_outbox: Opener) -> None:
    ob = open_outbox(OutboxLimits(max_records=1, min_free_disk_bytes=0))
    ob.append_many([envelope("events"), envelope("events"), envelope("telemetry")])
    before = ob.stats().drops
    ob.close()
    assert open_outbox().stats().drops == before == {("events", "full"): 1, ("telemetry", "full"): 1}


def test_claims_come_in_seq_order_within_count_and_byte_limits(open_outbox: Opener) -> None:
    ob = open_outbox()
    envs = [envelope() for _ in range(10)]
    ob.append_many(envs)
    size = len(wire_bytes(envs[0], 1))
    first = ob.claim(3, 1 << 20)
    second = ob.claim(100, size * 2 + 1)
    assert first is not None and second is not None
    assert [c.seq for c in first[1]] == [1, 2, 3]
    assert [c.seq for c in second[1]] == [4, 5]
    stats = ob.stats().streams["telemetry"]
    assert (stats.pending, stats.inflight) == (5, 5)


def test_a_record_over_the_byte_limit_still_goes_alone(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.append_many([envelope(pad=500), envelope()])
    claimed = ob.claim(10, 100)
    assert claimed is not None and [c.seq for c in claimed[1]] == [1]


def test_released_records_go_again_first_with_the_same_bytes(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.append_many([envelope() for _ in range(6)])
    a, b = ob.claim(3, 1 << 20), ob.claim(3, 1 << 20)
    assert a is not None and b is not None
    release(ob, a[1])
    again = ob.claim(10, 1 << 20)
    assert again is not None and again[1] == a[1]
    assert ob.claim(10, 1 << 20) is None


def test_release_all_and_a_restart_both_make_in_flight_records_pending(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.append_many([envelope() for _ in range(4)])
    ob.claim(2, 1 << 20)
    ob.claim(1, 1 << 20)
    assert ob.release_all() == 3
    assert ob.stats().total_pending == 4
    ob.claim(4, 1 << 20)
    ob.close()
    ob = open_outbox()
    stats = ob.stats()
    assert (stats.total_pending, stats.total_inflight) == (4, 0)
    assert [seq for _, seq, _ in drain(ob)] == [1, 2, 3, 4]


def test_acks_delete_once_and_ignore_repeats_and_strangers(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.append_many([envelope() for _ in range(3)])
    claimed = ob.claim(3, 1 << 20)
    assert claimed is not None
    recs = claimed[1]
    assert store_ack(ob, recs[:2]) == 2
    assert store_ack(ob, recs[:2]) == 0
    assert ob.stored(StreamAck(stream="telemetry", ranges=[(100, 200)], epoch=ob.epoch)) == 0
    ob.release_all()
    assert store_ack(ob, recs[2:]) == 1  # a late store ack after a disconnect still counts
    assert ob.stats().total_records == 0 and ob.claim(10, 1 << 20) is None


def test_expired_records_are_dropped_at_claim_and_counted(open_outbox: Opener, clock: Clock) -> None:
    ob = open_outbox()
    ob.append_many([envelope("heartbeat"), envelope("telemetry", ttl_s=5.0), envelope("telemetry")])
    clock.now += 10

    def claim_all() -> set[tuple[str, int]]:
        got = set()
        while (claimed := ob.claim(10, 1 << 20)) is not None:
            got |= {(c.stream, c.seq) for c in claimed[1]}
        ob.release_all()
        return got

    assert claim_all() == {("heartbeat", 1), ("telemetry", 2)}
    assert ob.stats().drops == {("telemetry", "expired"): 1}
    clock.now += 3600
    assert claim_all() == {("telemetry", 2)}
    assert ob.stats().drops == {("telemetry", "expired"): 1, ("heartbeat", "expired"): 1}


def test_an_in_flight_record_is_not_expired_under_the_uplink(open_outbox: Opener, clock: Clock) -> None:
    ob = open_outbox()
    ob.append(envelope("telemetry", ttl_s=1.0))
    claimed = ob.claim(1, 1 << 20)
    assert claimed is not None
    clock.now += 5
    assert ob.claim(1, 1 << 20) is None
    assert store_ack(ob, claimed[1]) == 1 and ob.stats().drops == {}


def test_a_new_incident_overtakes_a_telemetry_backlog(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.append_many([envelope("telemetry") for _ in range(500)])
    for _ in range(3):
        claimed = ob.claim(100, 1 << 20)
        assert claimed is not None
        store_ack(ob, claimed[1])
    ob.append(envelope("events"))
    assert (ob.claim(100, 1 << 20) or ("", []))[0] == "events"


def test_stats_report_depth_age_and_totals(open_outbox: Opener, clock: Clock) -> None:
    ob = open_outbox()
    ob.append(envelope("events"))
    clock.now += 30
    ob.append(envelope("events"))
    ob.claim(1, 1 << 20)
    stats = ob.stats()
    events = stats.streams["events"]
    assert (events.pending, events.inflight, events.last_seq, events.oldest_age_s) == (1, 1, 2, 30.0)
    assert events.bytes == stats.total_bytes > 0
    assert (stats.total_pending, stats.total_inflight, stats.total_records) == (1, 1, 2)


def test_metrics_show_depth_age_and_drops_per_stream(open_outbox: Opener, clock: Clock) -> None:
    ob = open_outbox(OutboxLimits(max_records=2, min_free_disk_bytes=0))
    registry = CollectorRegistry()
    register_outbox_metrics(ob, registry)
    ob.append_many([envelope("events") for _ in range(3)])
    clock.now += 7
    value = registry.get_sample_value
    assert value("cityedge_outbox_depth_records", {"stream": "events"}) == 2
    assert value("cityedge_outbox_oldest_age_seconds", {"stream": "events"}) == 7
    assert value("cityedge_outbox_dropped_total", {"stream": "events", "reason": "full"}) == 1
    assert value("cityedge_outbox_appends_total", {"stream": "events"}) == 2
    claimed = ob.claim(10, 1 << 20)
    assert claimed is not None
    ob.sent("events", claimed.seqs)
    clock.now += 3
    assert value("cityedge_outbox_sent_records", {"stream": "events"}) == 2
    assert value("cityedge_outbox_oldest_sent_age_seconds", {"stream": "events"}) == 3
    store_ack(ob, claimed[1])
    assert value("cityedge_outbox_acks_total", {"stream": "events"}) == 2
    assert value("cityedge_outbox_sent_records", {"stream": "events"}) == 0


def test_producers_and_the_uplink_share_the_outbox_across_threads(open_outbox: Opener) -> None:
    ob = open_outbox()
    per_producer, producers = 400, 2
    delivered: Counter[str] = Counter()
    done = threading.Event()

    def produce() -> None:
        for _ in range(per_producer // 20):
            ob.append_many([envelope(s) for s in ("events", "telemetry") for _ in range(10)])

    def uplink() -> None:
        while not done.is_set() or ob.stats().total_records:
            claimed = ob.claim(50, 1 << 20)
            if claimed is None:
                continue
            delivered.update(c.record_id for c in claimed[1])
            store_ack(ob, claimed[1])

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    sender = threading.Thread(target=uplink)
    sender.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    sender.join(timeout=30)
    assert len(delivered) == per_producer * producers and set(delivered.values()) == {1}
    assert {n: s.last_seq for n, s in ob.stats().streams.items()} == {"events": 400, "telemetry": 400}


def test_an_invalid_record_fails_the_whole_batch_with_its_position(open_outbox: Opener) -> None:
    ob = open_outbox()
    bad = msgspec.structs.replace(envelope(), stream="Bad Stream")
    with pytest.raises(OutboxError, match=r"record 1 .*invalid stream name 'Bad Stream'"):
        ob.append_many([envelope(), bad])
    with pytest.raises(OutboxError, match=r"item 0 is a dict"):
        ob.append_many([{"id": "x"}])  # type: ignore[list-item]
    assert ob.stats().total_records == 0


def test_a_record_that_cannot_be_encoded_fails_the_batch_and_takes_no_seq(open_outbox: Opener) -> None:
    ob = open_outbox()
    with pytest.raises(OutboxError, match=r"record 1 \(.*\) cannot be encoded"):
        ob.append_many([envelope(), envelope(when=object())])
    assert ob.stats().total_records == 0
    assert ob.append(envelope()).seq == 1


def test_a_closed_outbox_says_so(open_outbox: Opener) -> None:
    ob = open_outbox()
    ob.close()
    with pytest.raises(OutboxError, match=r"outbox\.db is closed"):
        ob.append(envelope())


def test_a_file_that_is_not_an_outbox_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match=r"outbox\.db"):
        Outbox.open(path)


def test_an_outbox_from_a_newer_agent_is_refused_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    Outbox.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(OutboxError, match=r"outbox\.db has schema 99, newer than 3"):
        Outbox.open(path)


def test_custom_policies_replace_the_defaults_and_unknown_streams_still_work(open_outbox: Opener) -> None:
    policies = {**DEFAULT_POLICIES, "telemetry": StreamPolicy("telemetry", 2, "reject_new")}
    ob = open_outbox(OutboxLimits(max_records=1, min_free_disk_bytes=0), policies=policies)
    ob.append(envelope("telemetry"))
    assert ob.append(envelope("telemetry")).reason == "full"
    ob.close()
    ob = open_outbox(OutboxLimits(max_records=1, min_free_disk_bytes=0))
    assert ob.append(envelope("parking")).reason == "full"  # nothing of its own to evict
    drain(ob)
    assert ob.append(envelope("parking")).accepted
    assert ob.append(envelope("parking")).dropped == 1


def test_a_record_redelivered_after_its_ack_is_a_duplicate_not_a_new_seq(open_outbox: Opener) -> None:
    ob = open_outbox()
    env = envelope("telemetry")
    assert ob.append(env).seq == 1
    assert [seq for _, seq, _ in drain(ob)] == [1]
    again = ob.append(env)  # e.g. the local broker resends it after a crash before its ack
    assert (again.accepted, again.reason) == (False, "duplicate")
    assert ob.append(envelope("telemetry")).seq == 2  # no gap in the stream's numbering


def test_acknowledged_ids_are_forgotten_after_the_window(open_outbox: Opener, clock: Clock) -> None:
    ob = open_outbox(OutboxLimits(min_free_disk_bytes=0, remember_acked_s=3600.0))
    old = envelope("telemetry")
    ob.append(old)
    drain(ob)
    clock.now += 2 * 3600.0
    ob.append(envelope("telemetry"))
    drain(ob)  # this ack prunes what is older than the window
    assert ob.append(old).accepted


def test_an_outbox_written_by_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    ob = Outbox.open(path)
    ob.append(envelope("events"))
    ob.close()
    with sqlite3.connect(path) as db:  # what an agent with schema 1 left behind
        db.execute("DROP TABLE acked")
        db.execute("PRAGMA user_version = 1")
    db.close()
    ob = Outbox.open(path)
    try:
        assert ob.stats().streams["events"].pending == 1
        assert [seq for _, seq, _ in drain(ob)] == [1]
    finally:
        ob.close()
