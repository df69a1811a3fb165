"""Hypothesis drives the real outbox (SQLite in a temp dir) against a plain model of the contract.

Random interleavings of appends (three policies, limits small enough to overflow), claims, acks
(repeated and late ones too), releases, reconnects, crashes, a full disk and the clock passing:
every accepted record is delivered once, still queued, or counted as dropped, and nothing else.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cityedge.edge.outbox import AppendResult, Outbox, OutboxLimits, StreamPolicy
from cityedge.protocol.envelope import Envelope
from tests.edge.outbox.helpers import Clock, envelope, wire_bytes

POLICIES = {
    "events": StreamPolicy("events", 8, "reject_new"),
    "telemetry": StreamPolicy("telemetry", 2, "drop_oldest"),
    "heartbeat": StreamPolicy("heartbeat", 4, "drop_oldest", ttl_s=30.0),
}
LIMITS = OutboxLimits(max_bytes=1500, max_records=6, min_free_disk_bytes=1000)
STREAMS = st.sampled_from(sorted(POLICIES))


@dataclass
class Rec:
    env: Envelope
    seq: int
    payload: bytes
    expires_at: float | None
    inflight: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.env.id, self.seq)


class OutboxContract(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-model-"))
        self.clock = Clock()
        self.free = 10**9
        self.ob = self._open()
        self.queued: dict[str, list[Rec]] = {s: [] for s in POLICIES}
        self.last_seq: Counter[str] = Counter()
        # Keyed by (id, seq): a record evicted and later redelivered by the local broker is
        # accepted again as a new record, under a new seq.
        self.accepted: dict[tuple[str, int], bytes] = {}
        self.delivered: dict[tuple[str, int], bytes] = {}
        self.dropped: set[tuple[str, int]] = set()
        self.drops: Counter[tuple[str, str]] = Counter()
        self.sent_once: set[str] = set()

    def _open(self) -> Outbox:
        return Outbox.open(self.dir / "outbox.db", POLICIES, LIMITS, self.clock, lambda _p: self.free)

    def teardown(self) -> None:
        self.ob.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model ------------------------------------------------------------------------------
    def _all(self) -> list[Rec]:
        return [r for recs in self.queued.values() for r in recs]

    def _find(self, record_id: str) -> Rec | None:
        return next((r for r in self._all() if r.env.id == record_id), None)

    def _expect_append(self, env: Envelope) -> AppendResult:
        if self._find(env.id) is not None:
            return AppendResult(False, env.id, None, "duplicate", 0)
        if self.free < LIMITS.min_free_disk_bytes:
            return self._refuse(env, "disk_floor")
        seq = self.last_seq[env.stream] + 1
        payload = wire_bytes(env, seq)
        if len(payload) > LIMITS.max_bytes:
            return self._refuse(env, "full")
        victims = self._victims(env.stream, len(payload))
        if victims is None:
            return self._refuse(env, "full")
        for victim in victims:
            self.queued[env.stream].remove(victim)
            self.dropped.add(victim.key)
        self.drops[(env.stream, "evicted")] += len(victims)
        ttl = env.ttl_s if env.ttl_s is not None else POLICIES[env.stream].ttl_s
        expiry = None if ttl is None else self.clock.now + ttl
        self.queued[env.stream].append(Rec(env, seq, payload, expiry))
        self.last_seq[env.stream] = seq
        self.accepted[(env.id, seq)] = payload
        return AppendResult(True, env.id, seq, None, len(victims))

    def _victims(self, stream: str, size: int) -> list[Rec] | None:
        """The stream's oldest pending records to evict so `size` fits; None if it cannot."""
        records, used = len(self._all()), sum(len(r.payload) for r in self._all())
        victims: list[Rec] = []
        candidates = iter([r for r in self.queued[stream] if not r.inflight])
        while records + 1 > LIMITS.max_records or used + size > LIMITS.max_bytes:
            if POLICIES[stream].when_full == "reject_new":
                return None
            victim = next(candidates, None)
            if victim is None:
                return None
            victims.append(victim)
            records, used = records - 1, used - len(victim.payload)
        return victims

    def _refuse(self, env: Envelope, reason: str) -> AppendResult:
        self.drops[(env.stream, reason)] += 1
        return AppendResult(False, env.id, None, reason, 0)

    # -- rules (few, so that Hypothesis' swarm of enabled rules usually holds the ones that matter) --
    @rule(
        stream=STREAMS,
        pads=st.lists(st.sampled_from([0, 0, 60, 250, 700]), min_size=1, max_size=4),
        ttl=st.sampled_from([None, None, 5.0, 30.0]),
        how=st.sampled_from(["batch", "batch", "one_by_one", "disk_full", "redelivery"]),
        data=st.data(),
    )
    def append(self, stream: str, pads: list[int], ttl: float | None, how: str, data: st.DataObject) -> None:
        envs = [envelope(stream, pad, ttl_s=ttl) for pad in pads]
        if how == "redelivery" and self._all():  # the local broker hands us a record again
            envs.append(data.draw(st.sampled_from(self._all())).env)
        self.free = 10 if how == "disk_full" else 10**9
        got = [self.ob.append(e) for e in envs] if how == "one_by_one" else self.ob.append_many(envs)
        assert got == [self._expect_append(e) for e in envs]

    @rule(
        max_records=st.integers(1, 5),
        max_bytes=st.sampled_from([100, 600, 10**6]),
        outcome=st.sampled_from(["ack", "release", "ack_some", "keep"]),
        wait=st.sampled_from([0.0, 0.0, 4.0, 10.0, 40.0]),
    )
    def send(self, max_records: int, max_bytes: int, outcome: str, wait: float) -> None:
        self.clock.now += wait  # time passes before the uplink comes back for more
        claimed = self._claim(max_records, max_bytes)
        ids = [rec.env.id for rec in claimed]
        half = len(ids) // 2
        if outcome == "ack":
            self._ack(ids)
        elif outcome == "release":
            self._release(ids)
        elif outcome == "ack_some":
            self._ack(ids[:half])
            self._release(ids[half:])

    @rule(what=st.sampled_from(["late_or_repeated_ack", "release_some", "reconnect"]), data=st.data())
    def link_trouble(self, what: str, data: st.DataObject) -> None:
        inflight = sorted(r.env.id for r in self._all() if r.inflight)
        if what == "late_or_repeated_ack" and self.sent_once:  # in flight, released, or acked already
            self._ack(data.draw(st.lists(st.sampled_from(sorted(self.sent_once)), max_size=6)))
        elif what == "release_some" and inflight:
            self._release(data.draw(st.lists(st.sampled_from(inflight), unique=True)))
        elif what == "reconnect":
            assert self.ob.release_all() == len(inflight)
            self._release(inflight)

    def _claim(self, max_records: int, max_bytes: int) -> list[Rec]:
        for rec in self._all():
            if not rec.inflight and rec.expires_at is not None and rec.expires_at <= self.clock.now:
                self.queued[rec.env.stream].remove(rec)
                self.dropped.add(rec.key)
                self.drops[(rec.env.stream, "expired")] += 1
        pending = {s: [r for r in recs if not r.inflight] for s, recs in self.queued.items()}
        got = self.ob.claim(max_records, max_bytes)
        if not any(pending.values()):
            assert got is None
            return []
        assert got is not None
        stream, claimed = got
        expected: list[Rec] = []
        for rec in pending[stream]:
            if len(expected) == max_records:
                break
            if expected and sum(len(r.payload) for r in expected) + len(rec.payload) > max_bytes:
                break
            expected.append(rec)
        # The same record, under the same id and seq, with the very bytes committed at append.
        assert [(c.record_id, c.stream, c.seq, c.payload) for c in claimed] == [
            (r.env.id, stream, r.seq, r.payload) for r in expected
        ]
        for rec in expected:
            rec.inflight = True
            self.sent_once.add(rec.env.id)
        return expected

    def _ack(self, ids: list[str]) -> None:
        present = {r.env.id: r for r in self._all() if r.env.id in ids}
        assert self.ob.ack(ids) == len(present)
        for rec in present.values():
            assert rec.key not in self.delivered, "a record was delivered twice"
            self.delivered[rec.key] = rec.payload
            self.queued[rec.env.stream].remove(rec)

    def _release(self, ids: list[str]) -> None:
        self.ob.release(ids)
        for rec in self._all():
            if rec.env.id in ids:
                rec.inflight = False

    @rule()
    def crash(self) -> None:
        self.ob.close()
        self.ob = self._open()
        for rec in self._all():
            rec.inflight = False

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def every_accepted_record_is_delivered_queued_or_counted(self) -> None:
        queued = {r.key for r in self._all()}
        assert not (queued & set(self.delivered)) and not (queued & self.dropped)
        assert not (set(self.delivered) & self.dropped)
        assert queued | set(self.delivered) | self.dropped == set(self.accepted)
        assert all(self.delivered[key] == self.accepted[key] for key in self.delivered)

    @invariant()
    def stats_and_drop_counters_match_the_model(self) -> None:
        stats = self.ob.stats()
        assert stats.drops == {k: n for k, n in self.drops.items() if n}
        for stream, recs in self.queued.items():
            s = stats.streams.get(stream)
            if s is None:
                assert not recs and not self.last_seq[stream]
                continue
            flying = sum(r.inflight for r in recs)
            assert (s.pending, s.inflight, s.last_seq) == (len(recs) - flying, flying, self.last_seq[stream])
            assert s.bytes == sum(len(r.payload) for r in recs)
        assert stats.total_records == len(self._all()) <= LIMITS.max_records
        assert stats.total_bytes <= LIMITS.max_bytes

    @invariant()
    def seqs_are_increasing_and_never_reused(self) -> None:
        for recs in self.queued.values():
            seqs = [r.seq for r in recs]
            assert seqs == sorted(set(seqs))


OutboxContract.TestCase.settings = settings(
    max_examples=50, stateful_step_count=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_outbox_keeps_its_contract_under_any_interleaving = OutboxContract.TestCase
