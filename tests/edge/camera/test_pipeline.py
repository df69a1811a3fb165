"""The camera pipeline end to end: a video in, decisions on the local bus, records in the sink."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import av
import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from cityedge.edge.camera.config import CameraConfig, parse_camera
from cityedge.edge.camera.pipeline import CameraMetrics, CameraPipeline, CameraWorker
from cityedge.edge.camera.sources import Frame, FrameSource, SourceConfig, SourceState
from cityedge.edge.records import EmittedRecord, ListSink
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Decision
from cityedge.sim.brokers import free_port
from tests.edge.camera.test_sources import wait_for

W, H, FPS = 320, 180, 10


def road_frames(seconds: float = 8.0) -> list[np.ndarray]:
    """An empty road for 1.5 s, then a car drives in along +x for 1.5 s and stops for good."""
    rng = np.random.default_rng(3)
    road = np.full((H, W, 3), 90, np.uint8)
    road[60:140] = 70  # the carriageway
    frames = []
    for i in range(int(seconds * FPS)):
        t = i / FPS
        img = road.copy()
        if t >= 1.5:
            x = int(10 + 60 * min(t - 1.5, 1.5))
            img[85:115, x : x + 40] = (200, 210, 230)
        noise = rng.integers(-3, 4, img.shape)
        frames.append(np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return frames


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "10"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def camera(url: str = "unused.mp4", **extra: Any) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam-1",
            "url": url,
            "zones": {
                "camera": "cam-1",
                "frame_size": [W, H],
                "lanes": [
                    {
                        "name": "east",
                        "polygon": [[0, 60], [320, 60], [320, 140], [0, 140]],
                        "direction": [1, 0],
                    }
                ],
            },
            "rules": {
                "stopped_after_s": 2.0,
                "stopped_probe_s": 1.0,
                "stopped_cooldown_s": 600,
                "count_window_s": 2.0,
            },
        }
        | extra
    )


class Bus:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, suffix: str, payload: bytes) -> None:
        self.messages.append((suffix, payload))


def kinds(records: list[EmittedRecord]) -> set[tuple[str, str]]:
    return {(r.stream, r.kind) for r in records}


def test_a_stopped_vehicle_yields_decisions_on_the_bus_and_records_in_the_sink() -> None:
    sink, bus = ListSink(), Bus()
    worker = CameraWorker(camera(), sink=sink, publish_local=bus, metrics=CameraMetrics(CollectorRegistry()))
    t0, decided = 1_700_000_000.0, []
    for i, img in enumerate(road_frames()):
        decided += worker.process(Frame(i, t0 + i / FPS, img))
    assert [d.action for d in decided] == ["alert", "raise_lighting"]
    assert {d.reason for d in decided} == {"stopped_vehicle in lane east"}
    published = [msgspec.json.decode(p, type=Decision) for _, p in bus.messages]
    assert published == decided
    assert {s for s, _ in bus.messages} == {"decisions/cam-1"}
    assert kinds(sink.records) >= {
        ("events", "incident"),
        ("decisions", "decision"),
        ("telemetry", "lane_count"),
    }
    [incident] = [r.body for r in sink.records if r.kind == "incident"]
    assert (incident["type"], incident["lane"]) == ("stopped_vehicle", "east")
    # The car stopped at t0+3 s; the rule waits 2 s of stillness measured over 1 s.
    assert 4.5 <= incident["detected_at"] - t0 <= 7.5
    counts = [r.body for r in sink.records if r.kind == "lane_count"]
    assert sum(c["count"] for c in counts) == 1


def test_the_threaded_pipeline_runs_a_paced_file_and_exports_latency_per_camera(tmp_path: Path) -> None:
    video = write_video(tmp_path / "road.mp4", road_frames(6.5))
    sink, bus, registry = ListSink(), Bus(), CollectorRegistry()
    pipeline = CameraPipeline([camera(str(video))], sink=sink, publish_local=bus, registry=registry).start()
    worker = pipeline.workers[0]
    wait_for(lambda: worker.processed + worker.source.dropped >= 65, timeout=30)
    pipeline.stop()
    [stats] = pipeline.stats()
    assert stats.source_state == SourceState.STOPPED
    assert stats.frames + stats.dropped == 65  # every frame either judged or counted as dropped
    assert stats.p95_ms is not None
    n = stats.frames
    assert registry.get_sample_value("cityedge_camera_latency_seconds_count", {"camera": "cam-1"}) == n
    assert registry.get_sample_value("cityedge_camera_frames_processed_total", {"camera": "cam-1"}) == n
    assert registry.get_sample_value("cityedge_camera_fps", {"camera": "cam-1"}) == pytest.approx(10, rel=0.3)
    assert [msgspec.json.decode(p, type=Decision).action for _, p in bus.messages] == [
        "alert",
        "raise_lighting",
    ]
    assert_no_image_data(sink.records, bus.messages)


_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=]{120,}")


def assert_no_image_data(records: list[EmittedRecord], messages: list[tuple[str, bytes]]) -> None:
    """Raw pixels never leave the pipeline: records are small trees of plain scalars."""

    def plain(value: object, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                plain(v, f"{where}.{k}")
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                plain(v, f"{where}[{i}]")
        else:
            assert value is None or isinstance(value, str | int | float | bool), f"{where}: {type(value)}"

    assert records
    for rec in records:
        plain(rec.body, f"{rec.stream}/{rec.kind}")
        encoded = msgspec.json.encode(rec.body)
        assert len(encoded) < 2048, (rec.kind, len(encoded))
        assert not _BASE64_RUN.search(encoded), rec.kind
    for _, payload in messages:
        assert len(payload) < 2048 and not _BASE64_RUN.search(payload)


def test_a_faster_source_is_thinned_to_the_configured_fps() -> None:
    worker = CameraWorker(
        camera(fps=5), sink=ListSink(), publish_local=Bus(), metrics=CameraMetrics(CollectorRegistry())
    )
    times = [100 + i / 25 for i in range(50)]  # 2 s of a 25 fps camera
    kept = [t for t in times if worker._due(t)]
    gaps = np.diff(kept)
    assert len(kept) == 11  # t=0, then one per 0.2 s period up to 1.96 s
    assert np.all((gaps >= 0.159) & (gaps <= 0.241))
    assert worker.thinned == 39


def test_a_failing_sink_and_bus_do_not_stop_the_camera() -> None:
    class Broken:
        def emit(self, *args: object) -> None:
            raise OSError("disk gone")

    def bus(suffix: str, payload: bytes) -> None:
        raise ConnectionError("local broker down")

    registry = CollectorRegistry()
    worker = CameraWorker(camera(), sink=Broken(), publish_local=bus, metrics=CameraMetrics(registry))
    decided = []
    for i, img in enumerate(road_frames()):
        decided += worker.process(Frame(i, 1000 + i / FPS, img))
    assert [d.action for d in decided] == ["alert", "raise_lighting"]  # decisions still taken
    assert (
        registry.get_sample_value("cityedge_camera_errors_total", {"camera": "cam-1", "stage": "publish"})
        == 2
    )
    assert (
        registry.get_sample_value("cityedge_camera_errors_total", {"camera": "cam-1", "stage": "record"}) >= 3
    )


def test_a_bad_frame_is_counted_and_the_next_one_is_processed() -> None:
    registry = CollectorRegistry()
    worker = CameraWorker(camera(), sink=ListSink(), publish_local=Bus(), metrics=CameraMetrics(registry))
    assert worker.process(Frame(0, 1.0, np.zeros((H, W), np.float32))) == []  # not a uint8 image
    assert worker.process(Frame(1, 1.1, np.zeros((H, W, 3), np.uint8))) == []
    assert worker.processed == 1
    assert (
        registry.get_sample_value("cityedge_camera_errors_total", {"camera": "cam-1", "stage": "perception"})
        == 1
    )


def test_zones_drawn_for_another_frame_size_are_scaled_to_the_decoded_frames() -> None:
    sink, bus = ListSink(), Bus()
    worker = CameraWorker(camera(), sink=sink, publish_local=bus, metrics=CameraMetrics(CollectorRegistry()))
    decided = []
    for i, img in enumerate(road_frames()):
        big = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)  # 640x360 frames, zones drawn at 320x180
        decided += worker.process(Frame(i, 50 + i / FPS, big))
    assert worker.rules.zones.frame_size == (640, 360)
    assert [d.action for d in decided] == ["alert", "raise_lighting"]


def test_camera_config_rejects_unknown_keys_and_foreign_zones_naming_the_camera() -> None:
    good = camera().model_dump(mode="json")
    with pytest.raises(ConfigError, match=r"cameras\.yaml: camera cam-1: frame_rate"):
        parse_camera(good | {"frame_rate": 10}, "cameras.yaml")
    with pytest.raises(ConfigError, match="zones are for camera 'cam-1', not 'cam-2'"):
        parse_camera(good | {"id": "cam-2"}, "cameras.yaml")
    with pytest.raises(ConfigError, match=r"detector\.options"):
        parse_camera(good | {"detector": {"name": "onnx", "options": "yes"}}, "cameras.yaml")


def test_an_unknown_detector_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown detector 'tpu'"):
        CameraWorker(
            camera(detector={"name": "tpu"}),
            sink=ListSink(),
            publish_local=Bus(),
            metrics=CameraMetrics(CollectorRegistry()),
            source=FrameSource(SourceConfig(url="x.mp4")),
        )


def test_an_unreachable_camera_leaves_the_pipeline_running_and_reports_it() -> None:
    registry = CollectorRegistry()
    cam = camera(f"rtsp://127.0.0.1:{free_port()}/cam", stall_timeout_s=1.0)
    pipeline = CameraPipeline([cam], sink=ListSink(), publish_local=Bus(), registry=registry).start()
    worker = pipeline.workers[0]
    try:
        wait_for(lambda: worker.source.status().reconnects >= 1)
        wait_for(
            lambda: registry.get_sample_value("cityedge_camera_source_streaming", {"camera": "cam-1"}) == 0
        )
        [stats] = pipeline.stats()
        assert stats.source_state in ("error", "connecting")
        assert worker._thread is not None and worker._thread.is_alive()
        assert worker.source.alive
    finally:
        pipeline.stop()
