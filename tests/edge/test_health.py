"""The heartbeat body: built from the agent's plain values, decoded by the cloud as sent; the
uplink's round trips summarised; the last will a valid batch the cloud can store."""

from __future__ import annotations

from datetime import UTC, datetime

from cityedge.edge.health import HostSample, RttWindow, build_heartbeat, heartbeat_dict, link_health
from cityedge.edge.outbox import OutboxStats, StreamStats
from cityedge.protocol import decode_batch
from cityedge.protocol.health import WILL_EPOCH, WILL_KIND, CameraHealth, decode_heartbeat, will_payload
from cityedge.protocol.topics import will_topic

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_heartbeat_carries_what_an_operator_needs_and_decodes_as_sent() -> None:
    stats = OutboxStats(
        streams={
            "events": StreamStats(
                pending=3,
                inflight=1,
                bytes=900,
                oldest_age_s=12.34,
                last_seq=40,
                sent=2,
                oldest_sent_age_s=5.0,
            )
        },
        total_pending=3,
        total_inflight=1,
        total_records=6,
        total_bytes=900,
        drops={("events", "full"): 4},
    )
    beat = build_heartbeat(
        interval_s=15.0,
        versions={"agent": "1.2.3"},
        uptime_s=99.94,
        outbox=stats,
        cameras={"cam-1": CameraHealth(fps=9.5, fps_target=10.0, p95_ms=42.0)},
        link=link_health(True, 2, [0.010, 0.012, 0.030]),
        host=HostSample(10, 100, 12.5, 40.0),
        cert_days_left=59.123456,
        now=NOW,
    )
    back = decode_heartbeat(heartbeat_dict(beat))
    assert back == beat
    assert back.outbox["events"].pending == 4 and back.outbox["events"].sent == 2
    assert back.outbox["events"].dropped == 4 and back.drops == {"events/full": 4}
    assert back.disk_free_ratio == 0.1 and back.cert_days_left == 59.12
    assert back.link.rtt_ms == 12.0 and back.link.reconnects == 2 and back.link.jitter_ms == 10.0


def test_an_older_agents_heartbeat_still_decodes() -> None:
    old = decode_heartbeat({"versions": {"agent": "0.1.0"}, "free_disk_bytes": 5, "uplink_connected": True})
    assert old.versions == {"agent": "0.1.0"} and old.interval_s is None and old.disk_free_ratio is None


def test_round_trips_are_kept_by_time() -> None:
    window = RttWindow(keep=3)
    for at in range(5):
        window.observe(float(at), at / 100)
    assert window.since(3.0) == [0.03, 0.04]
    assert link_health(False, 0, []).rtt_ms is None


def test_the_last_will_is_a_valid_batch_on_the_nodes_own_up_topic() -> None:
    batch, (env,) = decode_batch(
        will_payload("edge-node-001", "01936b2a-0000-7000-8000-000000000001", NOW, 7)
    )
    assert (batch.stream, batch.epoch, env.kind, env.seq, env.ts) == ("will", WILL_EPOCH, WILL_KIND, 7, NOW)
    assert will_topic("d1", "edge-node-001") == "ce/v1/d1/edge-node-001/up/will"
