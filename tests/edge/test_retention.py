"""Retention: stream-copied segments, time-to-live, byte cap, pinned clips, and a full disk."""

from __future__ import annotations

import time
from pathlib import Path

import av
import msgspec
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from cityedge.edge.camera.pipeline import CameraPipeline
from cityedge.edge.camera.sources import FrameSource, SourceConfig, SourceState
from cityedge.edge.records import ListSink
from cityedge.edge.retention import (
    RetentionConfig,
    RetentionError,
    RetentionStore,
    Segment,
    plan_deletions,
)
from cityedge.protocol.vision import Decision
from tests.edge.camera.test_pipeline import Bus, assert_no_image_data, camera, road_frames, write_video
from tests.edge.camera.test_sources import wait_for, write_test_video

HOUR = 3600.0
TTL = 24 * HOUR


def seg(i: int, start: float, size: int = 100, pinned_until: float = 0.0, length: float = 10.0) -> Segment:
    return Segment(i, "cam-1", f"/x/{i}.mkv", start, start + length, size, pinned_until)


@pytest.mark.parametrize(
    ("name", "segments", "now", "max_bytes", "expected"),
    [
        ("young segments stay", [seg(1, 0), seg(2, 10)], 20, 1000, []),
        ("older than the ttl goes", [seg(1, 0), seg(2, TTL)], TTL + 10, 1000, [(1, "expired")]),
        ("a pin outlives the ttl", [seg(1, 0, pinned_until=TTL + 99)], TTL + 10, 1000, []),
        (
            "an ended pin no longer protects",
            [seg(1, 0, pinned_until=TTL + 5)],
            TTL + 10,
            1000,
            [(1, "expired")],
        ),
        (
            "over the cap the oldest go first",
            [seg(3, 20), seg(1, 0), seg(2, 10)],
            30,
            150,
            [(1, "over_cap"), (2, "over_cap")],
        ),
        (
            "pinned segments are skipped by the cap",
            [seg(1, 0, pinned_until=99), seg(2, 10)],
            30,
            150,
            [(2, "over_cap")],
        ),
        (
            "pins alone may exceed the cap",
            [seg(1, 0, pinned_until=99), seg(2, 10, pinned_until=99)],
            30,
            150,
            [],
        ),
        (
            "expired ones count towards freeing the cap",
            [seg(1, 0, size=500), seg(2, TTL, size=100), seg(3, TTL + 10, size=100)],
            TTL + 15,
            150,
            [(1, "expired"), (2, "over_cap")],
        ),
    ],
)
def test_deletion_policy(
    name: str, segments: list[Segment], now: float, max_bytes: int, expected: list[tuple[int, str]]
) -> None:
    plan = plan_deletions(segments, now, TTL, max_bytes)
    assert [(d.segment.id, d.reason) for d in plan] == expected, name


def store_at(tmp_path: Path, now: list[float] | None = None, **cfg: object) -> RetentionStore:
    config = RetentionConfig.model_validate({"root": tmp_path / "segments", "segment_s": 0} | cfg)
    clock = (lambda: now[0]) if now is not None else time.time
    return RetentionStore(config, clock=clock, registry=CollectorRegistry())


def fake_segment(store: RetentionStore, name: str, start: float, size: int) -> Segment:
    path = store.config.root / name
    path.write_bytes(b"\0" * size)
    return store.index.add("cam-1", str(path), start, start + 10, size)


def test_the_store_enforces_ttl_and_byte_cap_on_disk_and_counts_deletions(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = store_at(tmp_path, now, ttl_s=3600, max_bytes=250)
    old = fake_segment(store, "old.mkv", now[0] - 7200, 100)
    a = fake_segment(store, "a.mkv", now[0] - 300, 100)
    b = fake_segment(store, "b.mkv", now[0] - 200, 100)
    c = fake_segment(store, "c.mkv", now[0] - 100, 100)
    plan = store.enforce()
    assert [(d.segment.id, d.reason) for d in plan] == [(old.id, "expired"), (a.id, "over_cap")]
    assert not Path(old.path).exists() and not Path(a.path).exists()
    assert Path(b.path).exists() and Path(c.path).exists()
    assert [s.id for s in store.index.segments()] == [b.id, c.id]
    reg = store.deletions
    assert reg.labels(reason="expired")._value.get() == 1 and reg.labels(reason="over_cap")._value.get() == 1
    assert store.bytes._value.get() == 200


def test_a_pinned_clip_is_kept_past_its_ttl_and_under_cap_pressure_until_the_pin_ends(tmp_path: Path) -> None:
    t0 = 1_000_000.0
    now = [t0]
    store = store_at(tmp_path, now, ttl_s=3600, max_bytes=150)
    clip = fake_segment(store, "incident.mkv", t0 - 50, 100)  # ends t0-40: its own ttl ends t0+3560
    other = fake_segment(store, "other.mkv", t0 - 30, 100)
    assert store.pin("cam-1", t0 - 45, t0 - 42, "stopped_vehicle") == 1  # pinned until t0+3600
    assert [d.segment.id for d in store.enforce()] == [other.id]  # the cap takes the unpinned, newer one
    now[0] = t0 + 3570
    assert store.enforce() == []
    assert Path(clip.path).exists()
    now[0] = t0 + 3601
    assert [(d.segment.id, d.reason) for d in store.enforce()] == [(clip.id, "expired")]


def test_a_pin_made_while_recording_applies_to_the_segment_when_it_closes(tmp_path: Path) -> None:
    now = [5000.0]
    store = store_at(tmp_path, now, ttl_s=100)
    assert store.pin("cam-1", 4990, 5010, "wrong_way") == 0  # nothing recorded there yet
    later = fake_segment(store, "later.mkv", 5005, 10)
    elsewhere = store.index.add("cam-2", str(store.config.root / "x.mkv"), 5005, 5015, 1)
    assert later.pinned_until == 5100
    assert elsewhere.pinned_until == 0  # pins are per camera


def record(tmp_path: Path, store: RetentionStore, clip: Path) -> FrameSource:
    src = FrameSource(
        SourceConfig(url=str(clip), realtime=False), packet_sink=store.recorder("cam-1")
    ).start()
    wait_for(lambda: src.status().state is SourceState.ENDED)
    return src


def packets(path: str | Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def test_recording_copies_the_compressed_stream_into_playable_segments(tmp_path: Path) -> None:
    clip = write_test_video(tmp_path / "clip.mp4", frames=20)  # a keyframe every 5 frames
    store = store_at(tmp_path)
    src = record(tmp_path, store, clip)
    segments = store.index.segments("cam-1")
    assert len(segments) == 4  # segment_s=0: each keyframe starts a segment
    copied = [p for s in segments for p in packets(s.path)]
    assert copied == packets(clip)  # byte for byte: remuxed, not re-encoded
    for s in segments:
        with av.open(s.path) as container:
            assert sum(1 for _ in container.decode(video=0)) == 5
        assert s.bytes == Path(s.path).stat().st_size and s.end > s.start
    assert src.status().frames == 20


def test_the_sweeper_keeps_the_byte_cap_while_cameras_record(tmp_path: Path) -> None:
    clip = write_test_video(tmp_path / "clip.mp4", frames=20)
    store = store_at(tmp_path, max_bytes=2500).start()  # about two of the four segments
    try:
        record(tmp_path, store, clip)

        def settled() -> bool:
            kept = store.index.segments()
            on_disk = sorted(p.name for p in store.config.root.rglob("*.mkv"))
            return sum(s.bytes for s in kept) <= 2500 and on_disk == sorted(Path(s.path).name for s in kept)

        wait_for(settled)
        assert store.deletions.labels(reason="over_cap")._value.get() == 2  # the oldest two of four
        assert len(store.index.segments()) == 2
    finally:
        store.stop()


def test_a_full_disk_stops_recording_counts_it_and_resumes_when_space_returns(tmp_path: Path) -> None:
    free = [0]
    config = RetentionConfig(root=tmp_path / "segments", segment_s=0, min_free_bytes=10_000)
    store = RetentionStore(config, free_disk=lambda _p: free[0], registry=CollectorRegistry())
    clip = write_test_video(tmp_path / "clip.mp4", frames=20)
    src = record(tmp_path, store, clip)
    assert src.status().frames == 20  # decoding (detection) went on
    assert store.index.segments() == []
    assert store.stopped.labels(camera="cam-1", reason="disk_full")._value.get() == 1  # once per outage
    free[0] = 10**9
    record(tmp_path, store, clip)
    assert len(store.index.segments()) == 4


def test_a_failing_write_stops_recording_but_not_the_stream(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    (store.config.root / "cam-1").write_text("a file where the camera's folder should be")
    clip = write_test_video(tmp_path / "clip.mp4", frames=20)
    src = record(tmp_path, store, clip)
    assert src.status().frames == 20
    assert store.index.segments() == []
    assert store.stopped.labels(camera="cam-1", reason="write_failed")._value.get() == 1


def run_recording_pipeline(tmp_path: Path, free_bytes: int) -> tuple[RetentionStore, ListSink, Bus]:
    """The whole camera pipeline, recording on, over 6.5 s of a paced road video with a stopped car."""
    video = write_video(tmp_path / "road.mp4", road_frames(6.5))
    config = RetentionConfig(root=tmp_path / "segments", segment_s=2)
    store = RetentionStore(config, free_disk=lambda _p: free_bytes, registry=CollectorRegistry())
    sink, bus = ListSink(), Bus()
    pipeline = CameraPipeline(
        [camera(str(video), record=True)],
        sink=sink,
        publish_local=bus,
        registry=CollectorRegistry(),
        recorders=store.recorder,
    ).start()
    worker = pipeline.workers[0]
    wait_for(lambda: worker.processed + worker.source.dropped >= 65, timeout=30)
    pipeline.stop()
    return store, sink, bus


def test_a_full_disk_never_stops_the_camera_pipeline_and_no_pixels_reach_the_sink(tmp_path: Path) -> None:
    store, sink, bus = run_recording_pipeline(tmp_path, free_bytes=0)
    assert store.stopped.labels(camera="cam-1", reason="disk_full")._value.get() == 1
    assert store.index.segments() == []
    assert [msgspec.json.decode(p, type=Decision).action for _, p in bus.messages] == [
        "alert",
        "raise_lighting",
    ]
    assert_no_image_data(sink.records, bus.messages)


def test_an_incident_pins_the_segments_that_cover_it(tmp_path: Path) -> None:
    store, sink, _ = run_recording_pipeline(tmp_path, free_bytes=10**12)
    [incident] = [r.body for r in sink.records if r.kind == "incident"]
    segments = store.index.segments("cam-1")
    assert len(segments) >= 3  # 6.5 s in segments of >= 2 s (keyframe every second)
    assert all(s.pinned_until > time.time() + TTL - 60 for s in segments)  # the clip spans the whole video
    assert segments[0].start <= incident["started_at"] - 0.1


def test_retention_config_and_index_errors_name_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="max_gigabytes"):
        RetentionConfig.model_validate({"root": tmp_path, "max_gigabytes": 3})
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "index.sqlite3").mkdir()  # a folder where the database should be
    with pytest.raises(RetentionError, match=r"segments/index\.sqlite3"):
        store_at(tmp_path)
