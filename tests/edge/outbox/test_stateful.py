"""Hypothesis drives the outbox against a plain model of its contract, twice: on the in-memory
storage (the pure core and the driver, no SQLite, no sockets) and on a real SQLite file.

Random interleavings of appends (three policies, limits small enough to overflow), claims,
broker acknowledgements, store acknowledgements (repeated, late and for another epoch too),
releases, reconnects, crashes, a full disk and the clock passing (store acknowledgements that
never come, so records go again): every accepted record is delivered once, still queued, or
counted as dropped, and nothing else.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cityedge.edge.outbox import AppendResult, Outbox, OutboxLimits, ResendPolicy, StreamPolicy
from cityedge.edge.outbox.storage import MemoryStore
from cityedge.protocol.acks import StreamAck, seq_ranges
from cityedge.protocol.envelope import Envelope
from tests.edge.outbox.helpers import Clock, envelope, wire_bytes

POLICIES = {
    "events": StreamPolicy("events", 8, "reject_new"),
    "telemetry": StreamPolicy("telemetry", 2, "drop_oldest"),
    "heartbeat": StreamPolicy("heartbeat", 4, "drop_oldest", ttl_s=30.0),
}
LIMITS = OutboxLimits(max_bytes=1500, max_records=6, min_free_disk_bytes=1000)
RESEND = ResendPolicy(timeout_s=8.0, cap_s=32.0)
STREAMS = st.sampled_from(sorted(POLICIES))
State = Literal["pending", "inflight", "sent"]


@dataclass
class Rec:
    env: Envelope
    seq: int
    payload: bytes
    expires_at: float | None
    state: State = "pending"
    deadline: float = 0.0

    @property
    def key(self) -> tuple[str, int]:
        return (self.env.id, self.seq)


class OutboxContract(RuleBasedStateMachine):
    storage = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-model-"))
        self.clock = Clock()
        self.free = 10**9
        self.memory = MemoryStore()
        self.ob = self._open()
        self.queued: dict[str, list[Rec]] = {s: [] for s in POLICIES}
        self.last_seq: Counter[str] = Counter()
        self.attempt: Counter[str] = Counter()
        # Keyed by (id, seq): a record evicted and later redelivered by the local broker is
        # accepted again as a new record, under a new seq.
        self.accepted: dict[tuple[str, int], bytes] = {}
        self.delivered: dict[tuple[str, int], bytes] = {}
        self.dropped: set[tuple[str, int]] = set()
        self.drops: Counter[tuple[str, str]] = Counter()
        self.ever_claimed: set[tuple[str, int]] = set()  # (stream, seq)

    def _open(self) -> Outbox:
        # rand=0: every resend wait is exactly half its ceiling, so the model can follow it.
        if self.storage == "memory":  # a "crash" of the twin: a new driver over the same dicts
            return Outbox.in_memory(
                POLICIES, LIMITS, self.clock, RESEND, lambda: self.free, lambda: 0.0, self.memory
            )
        return Outbox.open(
            self.dir / "outbox.db", POLICIES, LIMITS, self.clock, lambda _p: self.free, RESEND, lambda: 0.0
        )

    def teardown(self) -> None:
        self.ob.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model ------------------------------------------------------------------------------
    def _all(self) -> list[Rec]:
        return [r for recs in self.queued.values() for r in recs]

    def _find(self, record_id: str) -> Rec | None:
        return next((r for r in self._all() if r.env.id == record_id), None)

    def _expect_append(self, env: Envelope) -> AppendResult:
        if self._find(env.id) is not None or any(k[0] == env.id for k in self.delivered):
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
        candidates = iter([r for r in self.queued[stream] if r.state == "pending"])
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
        return AppendResult(False, env.id, None, reason, 0)  # type: ignore[arg-type]

    # -- rules ----------------------------------------------------------------------------------
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
        outcome=st.sampled_from(["puback", "puback", "release", "puback_some", "keep"]),
        wait=st.sampled_from([0.0, 0.0, 4.0, 10.0, 40.0]),
    )
    def send(self, max_records: int, max_bytes: int, outcome: str, wait: float) -> None:
        self.clock.now += wait  # time passes before the uplink comes back for more
        claimed = self._claim(max_records, max_bytes)
        half = len(claimed) // 2
        if outcome == "puback":
            self._sent(claimed)
        elif outcome == "release":
            self._release(claimed)
        elif outcome == "puback_some":
            self._sent(claimed[:half])
            self._release(claimed[half:])

    @rule(data=st.data(), how=st.sampled_from(["sent", "sent", "any_claimed_before", "other_epoch"]))
    def store_ack(self, data: st.DataObject, how: str) -> None:
        """The store acknowledges what it holds: usually sent records, sometimes late or repeated."""
        if how == "sent":
            pool = sorted((r.env.stream, r.seq) for r in self._all() if r.state == "sent")
        else:
            pool = sorted(self.ever_claimed)
        if not pool:
            return
        picked = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6, unique=True))
        for stream in {s for s, _ in picked}:
            seqs = [q for s, q in picked if s == stream]
            epoch = "another-outbox" if how == "other_epoch" else self.ob.epoch
            got = self.ob.stored(StreamAck(stream=stream, ranges=seq_ranges(seqs), epoch=epoch))
            assert got == (0 if how == "other_epoch" else self._stored(stream, seqs))

    @rule(what=st.sampled_from(["release_some", "reconnect"]), data=st.data())
    def link_trouble(self, what: str, data: st.DataObject) -> None:
        inflight = [r for r in self._all() if r.state == "inflight"]
        if what == "release_some" and inflight:
            self._release(data.draw(st.lists(st.sampled_from(inflight), unique_by=lambda r: r.key)))
        elif what == "reconnect":
            assert self.ob.release_all() == len(inflight)
            for rec in inflight:
                rec.state = "pending"

    @rule()
    def crash(self) -> None:
        if self.storage == "sqlite":
            self.ob.close()
        self.ob = self._open()
        self.attempt.clear()
        for rec in self._all():
            rec.state = "pending"

    def _claim(self, max_records: int, max_bytes: int) -> list[Rec]:
        for rec in self._all():
            if rec.state == "pending" and rec.expires_at is not None and rec.expires_at <= self.clock.now:
                self.queued[rec.env.stream].remove(rec)
                self.dropped.add(rec.key)
                self.drops[(rec.env.stream, "expired")] += 1
        for stream, recs in self.queued.items():
            overdue = [r for r in recs if r.state == "sent" and r.deadline <= self.clock.now]
            for rec in overdue:
                rec.state = "pending"
            if overdue:
                self.attempt[stream] += 1
        pending = {s: [r for r in recs if r.state == "pending"] for s, recs in self.queued.items()}
        got = self.ob.claim(max_records, max_bytes)
        if not any(pending.values()):
            assert got is None
            return []
        assert got is not None
        expected: list[Rec] = []
        for rec in pending[got.stream]:
            if len(expected) == max_records:
                break
            if expected and sum(len(r.payload) for r in expected) + len(rec.payload) > max_bytes:
                break
            expected.append(rec)
        # The same record, under the same id and seq, with the very bytes committed at append.
        assert [(c.record_id, c.stream, c.seq, c.payload) for c in got.records] == [
            (r.env.id, got.stream, r.seq, r.payload) for r in expected
        ]
        for rec in expected:
            rec.state = "inflight"
            self.ever_claimed.add((got.stream, rec.seq))
        return expected

    def _sent(self, recs: list[Rec]) -> None:
        for stream in {r.env.stream for r in recs}:
            mine = [r for r in recs if r.env.stream == stream]
            self.ob.sent(stream, [r.seq for r in mine])
            wait = RESEND.wait(self.attempt[stream], 0.0)
            for rec in mine:
                if rec.state == "inflight":
                    rec.state, rec.deadline = "sent", self.clock.now + wait

    def _release(self, recs: list[Rec]) -> None:
        for stream in {r.env.stream for r in recs}:
            self.ob.release(stream, [r.seq for r in recs if r.env.stream == stream])
        for rec in recs:
            if rec.state == "inflight":
                rec.state = "pending"

    def _stored(self, stream: str, seqs: list[int]) -> int:
        present = [r for r in self.queued[stream] if r.seq in seqs]
        for rec in present:
            assert rec.key not in self.delivered, "a record was delivered twice"
            self.delivered[rec.key] = rec.payload
            self.queued[stream].remove(rec)
        if present:
            self.attempt[stream] = 0
        return len(present)

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
            states = Counter(r.state for r in recs)
            assert (s.pending, s.inflight, s.sent, s.last_seq) == (
                states["pending"], states["inflight"], states["sent"], self.last_seq[stream],
            )  # fmt: skip
            assert s.bytes == sum(len(r.payload) for r in recs)
        assert stats.total_records == len(self._all()) <= LIMITS.max_records
        assert stats.total_bytes <= LIMITS.max_bytes

    @invariant()
    def seqs_are_increasing_and_never_reused(self) -> None:
        for recs in self.queued.values():
            seqs = [r.seq for r in recs]
            assert seqs == sorted(set(seqs))


class MemoryOutboxContract(OutboxContract):
    storage = "memory"


_SETTINGS = settings(
    max_examples=50, stateful_step_count=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
OutboxContract.TestCase.settings = _SETTINGS
MemoryOutboxContract.TestCase.settings = settings(_SETTINGS, max_examples=250)
test_the_sqlite_outbox_keeps_its_contract_under_any_interleaving = OutboxContract.TestCase
test_the_pure_core_in_memory_keeps_its_contract_under_any_interleaving = MemoryOutboxContract.TestCase
