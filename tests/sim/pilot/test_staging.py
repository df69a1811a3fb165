"""What each camera stages: the spec's mix on a timetable, lanes rotated, decoys left out of the truth."""

from __future__ import annotations

from cityedge.protocol.spec import parse_spec
from cityedge.sim.pilot.staging import plan_feeds, truth_without_decoys

SPEC = """\
Title: Staging
Latency-SLO: 150ms local
Throughput: 20 fps
Retention: 24h raw, metadata -> cloud
AcceptanceTest: Controlled run 48h, 10 incidents, <5% FP
nodes: 2
cameras_per_node: 2
run: 130s
"""


def test_every_camera_stages_the_mix_in_each_slot_on_its_own_lanes() -> None:
    spec = parse_spec(SPEC)
    feeds = plan_feeds(spec, 1000.0, [7000, 7001, 7002, 7003])
    assert [(f.node, f.camera, f.port) for f in feeds] == [
        ("edge-node-001", "cam-1", 7000), ("edge-node-001", "cam-2", 7001),
        ("edge-node-002", "cam-1", 7002), ("edge-node-002", "cam-2", 7003),
    ]  # fmt: skip
    for feed in feeds:
        sc = feed.scenario
        assert (sc.fps, sc.seconds, sc.size, sc.start_time) == (10.0, 130.0, (640, 360), 1000.0)
        assert sorted(i.type for i in sc.incidents) == sorted(
            ["stopped_vehicle", "wrong_way", "congestion"] * 2
        )
        assert [i.at for i in sc.incidents if i.type == "congestion"] == [12.0, 67.0]
    assert len({f.scenario.seed for f in feeds}) == 4
    assert len({tuple(i.lane for i in f.scenario.incidents) for f in feeds}) == 4  # lanes rotate per camera


def test_decoys_are_staged_but_not_in_the_ground_truth() -> None:
    spec = parse_spec(SPEC + "incidents: {stopped_vehicle: 1}\ndecoys: {stopped_vehicle: 1}\n")
    feed = plan_feeds(spec, 0.0, [1, 2, 3, 4])[0]
    assert feed.decoys and feed.decoys[0] in feed.scenario.incidents
    d = feed.decoys[0]
    truth = [
        {"type": "stopped_vehicle", "lane": d.lane, "start": 500.0 + d.at + 4.0, "end": 500.0 + d.at + 24.0},
        {"type": "congestion", "lane": "west_2", "start": 505.0, "end": 530.0},
    ]
    assert truth_without_decoys(truth, feed, 500.0) == [truth[1]]
