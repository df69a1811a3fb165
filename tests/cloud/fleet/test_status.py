"""Node status from heartbeats and wills: the table, silence, and old news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityedge.cloud.fleet.config import FleetSection
from cityedge.cloud.fleet.status import TRANSITIONS, FleetState, Status, next_status
from cityedge.protocol.errors import TransitionError
from cityedge.protocol.health import Heartbeat

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BEAT = Heartbeat(interval_s=10.0)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def fleet() -> FleetState:
    return FleetState(FleetSection(heartbeat_s=15.0, grace_s=1.0))


def test_a_first_heartbeat_brings_a_node_online() -> None:
    f = fleet()
    moved = f.heartbeat("n1", "d1", at(0), at(0), BEAT, "r1")
    assert moved is not None and (moved.before, moved.after) == (None, Status.ONLINE)


@pytest.mark.parametrize(
    ("quiet_s", "status"),
    [(20.9, Status.ONLINE), (21.0, Status.STALE), (40.9, Status.STALE), (41.0, Status.OFFLINE)],
)
def test_silence_makes_a_node_stale_at_two_missed_and_offline_at_four(quiet_s: float, status: Status) -> None:
    f = fleet()
    f.heartbeat("n1", "d1", at(0), at(0), BEAT, "r1")
    f.tick(at(quiet_s))
    assert f.nodes["n1"].status is status


def test_the_node_interval_not_the_default_decides_what_missed_means() -> None:
    f = fleet()
    f.heartbeat("n1", "d1", at(0), at(0), Heartbeat(interval_s=60.0), "r1")
    f.tick(at(100))
    assert f.nodes["n1"].status is Status.ONLINE


def test_a_will_takes_a_node_offline_at_once_and_a_heartbeat_brings_it_back() -> None:
    f = fleet()
    f.heartbeat("n1", "d1", at(0), at(0), BEAT, "r1")
    moved = f.will("n1", "d1", at(3))
    assert moved is not None and moved.after is Status.OFFLINE and "last will" in moved.reason
    assert f.heartbeat("n1", "d1", at(9), at(9), BEAT, "r2").after is Status.ONLINE  # type: ignore[union-attr]


def test_a_will_older_than_the_last_heartbeat_is_old_news() -> None:
    f = fleet()
    f.heartbeat("n1", "d1", at(10), at(10), BEAT, "r1")
    assert f.will("n1", "d1", at(5)) is None
    assert f.nodes["n1"].status is Status.ONLINE


def test_a_drained_backlog_heartbeat_keeps_the_newest_body() -> None:
    f = fleet()
    f.heartbeat("n1", "d1", at(10), at(10), Heartbeat(interval_s=10.0, uptime_s=99), "new")
    f.heartbeat("n1", "d1", at(11), at(-600), Heartbeat(interval_s=10.0, uptime_s=1), "old")
    assert f.nodes["n1"].heard.record_id == "new"  # type: ignore[union-attr]
    assert f.nodes["n1"].last_seen == at(11)


def test_every_state_and_event_has_a_row_and_strangers_raise() -> None:
    for state in (None, *Status):
        for event in ("heartbeat", "will"):
            assert (state, event) in TRANSITIONS
    with pytest.raises(TransitionError):
        next_status(None, "missed_offline")


def test_counts_cover_every_status() -> None:
    f = fleet()
    f.heartbeat("a", "d1", at(0), at(0), BEAT, "1")
    f.will("b", "d1", at(0))
    assert f.counts() == {"online": 1, "stale": 0, "offline": 1}
