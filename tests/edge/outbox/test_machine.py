"""The outbox's pure core on its own: record states, resend timing and the store's
acknowledgement, as fast scenarios with the clock passed in (no disk, no sleeps)."""

from __future__ import annotations

from cityedge.edge.outbox.machine import Admitted, OutboxCore, Refused
from cityedge.edge.outbox.policy import DEFAULT_POLICIES, OutboxLimits, ResendPolicy, StreamPolicy

DAY = 86_400.0
RESEND = ResendPolicy(timeout_s=30.0, cap_s=600.0)


def core(limits: OutboxLimits = OutboxLimits(min_free_disk_bytes=0)) -> OutboxCore:
    return OutboxCore(DEFAULT_POLICIES, limits, RESEND, rand=lambda: 0.999)


def fill(c: OutboxCore, stream: str, n: int, now: float = 0.0) -> list[int]:
    seqs = []
    for _ in range(n):
        verdict = c.admit(stream, 100, None, now, 1 << 40, duplicate=False)
        assert isinstance(verdict, Admitted)
        seqs.append(verdict.seq)
    return seqs


def test_a_record_the_broker_took_waits_for_the_store_and_goes_again_when_it_is_silent() -> None:
    c = core()
    fill(c, "events", 3)
    stream, seqs = c.claim(10, 1 << 20) or ("", [])
    c.sent(stream, seqs, now=0.0)
    assert (c.streams["events"].pending, len(c.streams["events"].sent)) == (0, 3)
    assert c.requeue_overdue(now=29.0) == 0  # the first wait is at most 30 s
    assert c.requeue_overdue(now=30.0) == 3
    assert c.claim(10, 1 << 20) == ("events", [1, 2, 3])


def test_broker_down_for_three_days_then_a_repeated_store_ack_deletes_once() -> None:
    c = core()
    fill(c, "telemetry", 5)
    now, waits = 0.0, []
    for _ in range(12):  # the store never answers: every resend waits longer, up to the cap
        _, seqs = c.claim(10, 1 << 20) or ("", [])
        c.sent("telemetry", seqs, now)
        due = c.next_deadline()
        assert due is not None
        waits.append(due - now)
        now = due
        c.requeue_overdue(now)
    assert [round(w, 3) for w in waits[:5]] == [29.985, 59.97, 119.94, 239.88, 479.76]
    assert round(max(waits), 3) == 599.7  # capped: a store away for days is not hammered
    now += 3 * DAY
    _, seqs = c.claim(10, 1 << 20) or ("", [])
    c.sent("telemetry", seqs, now)
    assert [seq for seq, _ in c.stored("telemetry", [(1, 5)])] == [1, 2, 3, 4, 5]
    assert c.stored("telemetry", [(1, 5)]) == []  # the duplicate ack finds nothing
    assert c.usage.records == 0 and c.streams["telemetry"].acked == 5


def test_the_first_store_ack_resets_the_resend_wait() -> None:
    c = core()
    fill(c, "events", 2)
    c.sent("events", c.claim(1, 1 << 20)[1], now=0.0)  # type: ignore[index]
    c.requeue_overdue(now=1000.0)
    assert c.streams["events"].resend_attempt == 1
    c.sent("events", c.claim(1, 1 << 20)[1], now=1000.0)  # type: ignore[index]
    assert c.stored("events", [(1, 1)]) == [(1, 0.0)]
    assert c.streams["events"].resend_attempt == 0
    c.sent("events", c.claim(1, 1 << 20)[1], now=1000.0)  # type: ignore[index]
    assert c.next_deadline() == 1000.0 + RESEND.wait(0, 0.999)


def test_a_store_ack_deletes_a_record_in_any_state_and_a_late_puback_is_ignored() -> None:
    c = core()
    fill(c, "events", 3)
    _, seqs = c.claim(2, 1 << 20) or ("", [])  # 1 and 2 in flight, 3 pending
    assert [seq for seq, _ in c.stored("events", [(1, 3)])] == [1, 2, 3]
    c.sent("events", seqs, now=0.0)  # the PUBACK arrives after the store's ack
    assert c.usage.records == 0 and c.next_deadline() is None and c.claim(10, 1 << 20) is None


def test_a_dropped_link_makes_in_flight_records_pending_but_sent_ones_keep_waiting() -> None:
    c = core()
    fill(c, "events", 4)
    c.sent("events", c.claim(2, 1 << 20)[1], now=0.0)  # type: ignore[index]
    c.claim(2, 1 << 20)
    assert c.release_all() == 2
    s = c.streams["events"]
    assert (s.pending, len(s.inflight), len(s.sent)) == (2, 0, 2)
    assert c.claim(10, 1 << 20) == ("events", [3, 4])


def test_drop_oldest_evicts_only_pending_records_never_ones_on_their_way() -> None:
    c = core(OutboxLimits(max_records=4, min_free_disk_bytes=0))
    fill(c, "telemetry", 4)
    c.sent("telemetry", c.claim(2, 1 << 20)[1], now=0.0)  # type: ignore[index]
    verdict = c.admit("telemetry", 100, None, 1.0, 1 << 40, duplicate=False)
    assert verdict == Admitted(5, None, (3,))
    assert c.drops[("telemetry", "evicted")] == 1


def test_a_sent_record_past_its_time_to_live_expires_once_it_is_pending_again() -> None:
    c = OutboxCore(
        {"hb": StreamPolicy("hb", 4, "drop_oldest", ttl_s=10.0)}, OutboxLimits(), RESEND, lambda: 0.0
    )
    fill(c, "hb", 1)
    c.sent("hb", c.claim(1, 1 << 20)[1], now=0.0)  # type: ignore[index]
    assert c.expire(now=20.0) == []  # on its way: not expired under the uplink
    c.requeue_overdue(now=20.0)
    assert c.expire(now=20.0) == [("hb", 1)]
    assert c.drops[("hb", "expired")] == 1


def test_refusals_are_counted_by_reason_and_take_no_seq() -> None:
    c = core(OutboxLimits(max_records=1, min_free_disk_bytes=1000))
    assert c.admit("events", 10, None, 0.0, 10, duplicate=False) == Refused("disk_floor")
    fill(c, "events", 1)
    assert c.admit("events", 10, None, 0.0, 1 << 40, duplicate=False) == Refused("full")
    assert c.admit("events", 10, None, 0.0, 1 << 40, duplicate=True) == Refused("duplicate")
    assert c.next_seq("events") == 2
    assert c.drops == {("events", "disk_floor"): 1, ("events", "full"): 1}
    assert c.streams["events"].duplicates == 1
