"""The camera pipeline of a node: per camera a thread runs source -> perception -> rules -> decisions.

Each decision is published on the local bus at once (injected `publish_local`) and recorded,
with incidents and lane counts, through the injected `RecordSink`. Latency from capture to
rules done (when a decision is taken) is a Prometheus histogram per camera. A failing frame,
sink or bus is counted and logged; it never stops the camera's thread.
"""

from __future__ import annotations

import collections
import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec
import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from cityedge.edge.camera.config import CameraConfig
from cityedge.edge.camera.decisions import DecisionPolicy
from cityedge.edge.camera.detectors.base import Detector, create_detector
from cityedge.edge.camera.detectors.motion import MotionDetector
from cityedge.edge.camera.perception import Perception
from cityedge.edge.camera.rules import RuleEngine, RuleOutput
from cityedge.edge.camera.sources import Frame, FrameSource, PacketSink, SourceConfig, SourceState
from cityedge.edge.camera.tracker import Tracker
from cityedge.edge.camera.zones import frame_size_note
from cityedge.edge.records import RecordSink
from cityedge.protocol.vision import Decision

__all__ = [
    "CameraMetrics",
    "CameraPipeline",
    "CameraStats",
    "CameraWorker",
    "ClipRecorder",
    "PublishLocal",
    "RecorderFactory",
    "build_detector",
]

log = logging.getLogger(__name__)

PublishLocal = Callable[[str, bytes], object]
_PLUGINS = ("cityedge.edge.camera.detectors.motion", "cityedge.edge.camera.detectors.onnx")
_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
_PIN_BEFORE_S = 10.0  # clip context kept before an incident started ...
_PIN_AFTER_S = 10.0  # ... and after it was detected
_M = TypeVar("_M", Counter, Gauge, Histogram)


class ClipRecorder(PacketSink, Protocol):
    """A camera's segment recorder (retention): takes the compressed stream, pins clips."""

    def pin(self, start: float, end: float, reason: str) -> None: ...


RecorderFactory = Callable[[str], ClipRecorder]


class CameraMetrics:
    """The pipeline's Prometheus metrics, each labelled by camera first (one set per registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        def per_camera(metric: type[_M], name: str, doc: str, *labels: str, **kw: Any) -> _M:
            return metric(name, doc, ["camera", *labels], registry=registry, **kw)

        self.latency = per_camera(
            Histogram,
            "cityedge_camera_latency_seconds",
            "Frame capture to rules done (when a decision is taken)",
            buckets=_LATENCY_BUCKETS,
        )
        self.frames = per_camera(
            Counter, "cityedge_camera_frames_processed", "Frames run through perception and rules"
        )
        self.dropped = per_camera(
            Counter,
            "cityedge_camera_frames_dropped",
            "Frames not processed: behind (the pipeline was busy) or thinned (source faster than fps)",
            "reason",
        )
        self.fps = per_camera(Gauge, "cityedge_camera_fps", "Frames processed per second (recent)")
        self.errors = per_camera(
            Counter, "cityedge_camera_errors", "Failures caught and survived, by stage", "stage"
        )
        self.streaming = per_camera(
            Gauge, "cityedge_camera_source_streaming", "1 when the source is streaming"
        )


@dataclass(frozen=True)
class CameraStats:
    camera: str
    frames: int
    dropped: int
    fps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    source_state: str
    source_reason: str
    inferences: int = 0  # detector runs (a heavy detector's; 0 for the motion model)
    thinned: int = 0  # frames skipped because the source ran faster than `fps`


def build_detector(config: CameraConfig) -> tuple[Detector, MotionDetector | None]:
    """The camera's detector and, for a heavy detector, the motion model that gates it."""
    for module in _PLUGINS:
        importlib.import_module(module)  # plugins register themselves on import
    det = config.detector
    if det.name == "motion":
        options = det.options or config.motion.model_dump()
        return create_detector("motion", options), None
    gate = MotionDetector(config.motion) if det.motion_gate else None
    return create_detector(det.name, det.options), gate


class CameraWorker:
    """One camera: its source, perception, rules and decisions, on one thread."""

    def __init__(
        self,
        config: CameraConfig,
        *,
        sink: RecordSink,
        publish_local: PublishLocal,
        metrics: CameraMetrics,
        source: FrameSource | None = None,
        recorder: ClipRecorder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.camera = config.id
        self._sink = sink
        self._publish = publish_local
        self._recorder = recorder
        self._clock = clock
        self.source = source or FrameSource(_source_config(config), packet_sink=recorder, name=config.id)
        detector, gate = build_detector(config)
        self.perception = Perception(detector, Tracker(config.tracker_config()), gate=gate)
        self.rules = RuleEngine(config.zones, config.rules)
        self.policy = DecisionPolicy(config.decisions)
        self._m = metrics
        self._latency = metrics.latency.labels(camera=self.camera)
        self._frames = metrics.frames.labels(camera=self.camera)
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=50_000)
        self._fresh: collections.deque[tuple[float, float]] | None = None  # see collect_samples
        self._recent: collections.deque[float] = collections.deque(maxlen=30)
        self._next_due: float | None = None
        self._sized = False
        self._dropped_seen = 0
        self.thinned = 0
        self.processed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> CameraWorker:
        self.source.start()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.source.stop()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self.source.read(timeout=0.5)
            self._sync_source_metrics()
            if frame is not None and self._due(frame.captured_at):
                self.process(frame)

    # --- one frame ---------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[Decision]:
        """Perceive, judge and decide on one frame; publish and record what comes out."""
        try:
            self._fit_zones(frame.image)
            tracks = self.perception.process(self.camera, frame.index, frame.image, frame.captured_at)
            out = self.rules.step(tracks)
        except Exception:
            log.exception("camera %s: frame %d failed", self.camera, frame.index)
            self._m.errors.labels(camera=self.camera, stage="perception").inc()
            return []
        done = self._clock()
        latency = done - frame.captured_at
        self._latency.observe(latency)
        decisions = self.policy.decide(out.incidents, out.congestion, captured_at=frame.captured_at, now=done)
        for decision in decisions:
            self._publish_decision(decision)
        self._record(out, decisions)
        self._account(frame.captured_at, latency)
        return decisions

    def offer(self, frame: Frame) -> list[Decision] | None:
        """What the camera's thread does with each frame: thin to `fps`, then process (None:
        thinned). Replays of a file call it frame by frame."""
        return self.process(frame) if self._due(frame.captured_at) else None

    def _fit_zones(self, image: np.ndarray[Any, Any]) -> None:
        # Zones are drawn on some frame size; a camera decoded at another size gets them scaled.
        if self._sized:
            return
        self._sized = True
        size = (int(image.shape[1]), int(image.shape[0]))
        note = frame_size_note(self.config.zones, size)
        if note is not None:
            log.warning("%s", note[1])
            self.rules = RuleEngine(self.config.zones.scaled(size), self.config.rules)

    def _publish_decision(self, decision: Decision) -> None:
        try:
            self._publish(f"decisions/{self.camera}", msgspec.json.encode(decision))
        except Exception:
            log.exception("camera %s: local publish of %s failed", self.camera, decision.action)
            self._m.errors.labels(camera=self.camera, stage="publish").inc()

    def _record(self, out: RuleOutput, decisions: Sequence[Decision]) -> None:
        for inc in out.incidents:
            self._emit("events", "incident", msgspec.to_builtins(inc), inc.detected_at)
            if self._recorder is not None:
                self._pin(inc.started_at - _PIN_BEFORE_S, inc.detected_at + _PIN_AFTER_S, inc.type)
        for change in out.congestion:
            self._emit("events", "congestion_change", msgspec.to_builtins(change), change.at)
        for decision in decisions:
            self._emit("decisions", "decision", msgspec.to_builtins(decision), decision.decided_at)
        for count in out.counts:
            self._emit("telemetry", "lane_count", msgspec.to_builtins(count), count.window_end)

    def _emit(self, stream: str, kind: str, body: dict[str, Any], at: float) -> None:
        try:
            self._sink.emit(stream, kind, body, datetime.fromtimestamp(at, UTC))
        except Exception:
            log.exception("camera %s: recording %s/%s failed", self.camera, stream, kind)
            self._m.errors.labels(camera=self.camera, stage="record").inc()

    def _pin(self, start: float, end: float, reason: str) -> None:
        assert self._recorder is not None
        try:
            self._recorder.pin(start, end, reason)
        except Exception:
            log.exception("camera %s: pinning a clip failed", self.camera)
            self._m.errors.labels(camera=self.camera, stage="retention").inc()

    # --- accounting --------------------------------------------------------------------------
    def _due(self, t: float) -> bool:
        """Thin a source faster than `fps`, tolerating a quarter period of jitter."""
        period = 1.0 / self.config.fps
        if self._next_due is not None and t < self._next_due - 0.25 * period:
            self.thinned += 1
            self._m.dropped.labels(camera=self.camera, reason="thinned").inc()
            return False
        late = self._next_due is None or t > self._next_due + period
        self._next_due = t + period if late else self._next_due + period  # type: ignore[operator]
        return True

    def _account(self, captured_at: float, latency: float) -> None:
        self.processed += 1
        self._frames.inc()
        self._samples.append((captured_at, latency))
        if self._fresh is not None:
            self._fresh.append((captured_at, latency))
        self._recent.append(captured_at)
        if len(self._recent) > 1 and self._recent[-1] > self._recent[0]:
            self._m.fps.labels(camera=self.camera).set(
                (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])
            )

    def _sync_source_metrics(self) -> None:
        dropped = self.source.dropped
        if dropped > self._dropped_seen:
            self._m.dropped.labels(camera=self.camera, reason="behind").inc(dropped - self._dropped_seen)
            self._dropped_seen = dropped
        streaming = self.source.status().state is SourceState.STREAMING
        self._m.streaming.labels(camera=self.camera).set(1 if streaming else 0)

    def latencies(self, since: float = 0.0) -> list[float]:
        """Capture-to-decision latencies (s) of frames captured at or after `since`."""
        return [lat for t, lat in list(self._samples) if t >= since]

    def collect_samples(self) -> None:
        """From now on keep each frame's (capture time, latency) for `take_samples` too."""
        self._fresh = collections.deque(maxlen=50_000)

    def take_samples(self) -> list[tuple[float, float]]:
        """The samples kept since the previous call (a worker process reports them to the agent).
        Appending and popping a deque are atomic, so the camera's thread never waits for this."""
        taken: list[tuple[float, float]] = []
        while self._fresh:
            taken.append(self._fresh.popleft())
        return taken

    def stats(self, since: float = 0.0) -> CameraStats:
        lat = self.latencies(since)
        p50, p95, p99 = (float(np.percentile(lat, q) * 1000) for q in (50, 95, 99)) if lat else (None,) * 3
        status = self.source.status()
        fps = 0.0
        if len(self._recent) > 1 and self._recent[-1] > self._recent[0]:
            fps = (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])
        inferences = int(getattr(self.perception.detector, "inferences", 0))
        return CameraStats(
            self.camera,
            self.processed,
            status.dropped,
            fps,
            p50,
            p95,
            p99,
            status.state.value,
            status.reason,
            inferences,
            self.thinned,
        )


def _source_config(config: CameraConfig) -> SourceConfig:
    return SourceConfig(
        url=config.url,
        realtime=config.realtime,
        loop=config.loop,
        size=config.size,
        stall_timeout_s=config.stall_timeout_s,
        grey=config.detector.name == "motion",  # the motion model needs no colour: skip the BGR
    )


class CameraPipeline:
    """All cameras of a node; `recorders` (retention) is asked for a recorder per recording camera."""

    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        *,
        sink: RecordSink,
        publish_local: PublishLocal,
        registry: CollectorRegistry = REGISTRY,
        recorders: RecorderFactory | None = None,
    ) -> None:
        metrics = CameraMetrics(registry)
        self.workers = [
            CameraWorker(
                cam,
                sink=sink,
                publish_local=publish_local,
                metrics=metrics,
                recorder=recorders(cam.id) if (recorders is not None and cam.record) else None,
            )
            for cam in cameras
        ]

    def start(self, stagger_s: float = 0.0) -> CameraPipeline:
        """Start every camera, `stagger_s` apart (like real, unsynchronised cameras)."""
        for i, worker in enumerate(self.workers):
            if i and stagger_s > 0:
                time.sleep(stagger_s)
            worker.start()
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stats(self, since: float = 0.0) -> list[CameraStats]:
        return [w.stats(since) for w in self.workers]

    def latencies(self, since: float = 0.0) -> list[float]:
        """Capture-to-decision latencies (s) of every camera's frames captured at or after `since`."""
        return [x for w in self.workers for x in w.latencies(since)]
