"""Replay a video file through one camera's node pipeline: what the node would decide, and how fast.

Frames go one by one, none dropped, through the node's own `CameraWorker` (thinning to the
camera's fps, perception, rules, decisions, records), as fast as they decode or paced at
the file's rate. Times are the file's presentation timestamps in seconds, so an incident
detected "at 12.3" was detected 12.3 s into the clip. `annotate` writes the clip again with
the lanes, boxes, track ids and incidents drawn.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import msgspec
import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry

from cityedge.edge.camera.config import CameraConfig
from cityedge.edge.camera.overlay import draw_incidents, draw_lines, draw_tracks, draw_zones
from cityedge.edge.camera.perception import Perception
from cityedge.edge.camera.pipeline import CameraMetrics, CameraWorker
from cityedge.edge.camera.sources import Frame
from cityedge.edge.camera.zones import Lane, frame_size_note
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import CongestionChange, Decision, FrameTracks, Incident, LaneCount

__all__ = ["ReplayReport", "replay"]

_BANNER_S = 3.0  # an incident stays drawn this long after it was detected


@dataclass(frozen=True)
class ReplayReport:
    """What a replay found. Times are seconds of the file's timeline; `frame_ms_*` is the
    processing time of a judged frame (perception, rules, decisions), decoding excluded."""

    camera: str
    video: str
    frame_size: tuple[int, int]
    frames: int  # decoded
    processed: int  # judged; the others were thinned to the camera's fps
    thinned: int
    errors: int  # frames whose processing failed (logged, as on the node)
    clip_s: float
    wall_s: float
    frame_ms_p50: float | None
    frame_ms_p95: float | None
    frame_ms_max: float | None
    decode_ms_p50: float | None
    tracks: int  # tracks confirmed long enough for the rules to look at them
    counts: dict[str, int]  # lane, or lane/line/direction at count lines -> vehicles over the clip
    vehicles: int  # per lane its busiest count line (a vehicle crossing two lines is one), summed
    incidents: list[Incident] = field(default_factory=list)
    congestion: list[CongestionChange] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    count_windows: list[LaneCount] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    annotated: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


class _Records:
    """The replay's RecordSink: keeps what the node would have put in its outbox, typed."""

    def __init__(self) -> None:
        self.incidents: list[Incident] = []
        self.congestion: list[CongestionChange] = []
        self.decisions: list[Decision] = []
        self.counts: list[LaneCount] = []

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: datetime) -> None:
        if kind == "incident":
            self.incidents.append(msgspec.convert(body, Incident))
        elif kind == "congestion_change":
            self.congestion.append(msgspec.convert(body, CongestionChange))
        elif kind == "decision":
            self.decisions.append(msgspec.convert(body, Decision))
        elif kind == "lane_count":
            self.counts.append(msgspec.convert(body, LaneCount))


class _TappedPerception(Perception):
    """The worker's perception, keeping the latest frame's tracks for drawing and counting."""

    def __init__(self, inner: Perception, min_hits: int) -> None:
        super().__init__(inner.detector, inner.tracker, gate=inner.gate)
        self.min_hits = min_hits
        self.last: FrameTracks | None = None
        self.confirmed: set[int] = set()

    def process(self, camera: str, frame_index: int, frame: NDArray[Any], captured_at: float) -> FrameTracks:
        self.last = super().process(camera, frame_index, frame, captured_at)
        self.confirmed.update(t.track_id for t in self.last.tracks if t.hits >= self.min_hits)
        return self.last


class _FileClock:
    """The worker's clock in a replay: the frame's file time plus the processing time so far,
    so latencies are processing times and decisions are stamped on the file's timeline."""

    def __init__(self) -> None:
        self._frame_t = 0.0
        self._start = time.perf_counter()

    def begin(self, t: float) -> None:
        self._frame_t, self._start = t, time.perf_counter()

    def __call__(self) -> float:
        return self._frame_t + (time.perf_counter() - self._start)


def replay(
    config: CameraConfig, video: Path, *, realtime: bool = False, annotate: Path | None = None
) -> ReplayReport:
    """Run `video` through the pipeline `config` describes (its `url` is not read)."""
    clock, records = _FileClock(), _Records()
    worker = CameraWorker(
        config,
        sink=records,
        publish_local=lambda _topic, _payload: True,
        metrics=CameraMetrics(CollectorRegistry()),
        clock=clock,
    )
    worker.perception = tap = _TappedPerception(worker.perception, config.rules.min_hits)
    run = _Run(worker, clock, realtime)
    writer = _Annotator(annotate, _frame_rate(video)) if annotate is not None else None
    try:
        for index, (t, image, decode_s) in enumerate(_decode(video, config.size)):
            run.frame(Frame(index, t, image), decode_s)
            if writer is not None:
                writer.write(image, worker, tap.last, records.incidents, t)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    records.counts.extend(run.close_count_window())
    return run.report(video, records, len(tap.confirmed), annotate if writer is not None else None)


class _Run:
    """The frame loop's bookkeeping: pacing, timings, the first frame's size."""

    def __init__(self, worker: CameraWorker, clock: _FileClock, realtime: bool) -> None:
        self.worker, self.clock, self.realtime = worker, clock, realtime
        self.frame_ms: list[float] = []
        self.decode_ms: list[float] = []
        self.frames = 0
        self.first_t: float | None = None
        self.last_t = 0.0
        self.size = (0, 0)
        self.warnings: list[str] = []
        self.wall0 = time.perf_counter()

    def frame(self, frame: Frame, decode_s: float) -> None:
        if self.first_t is None:
            self.first_t = frame.captured_at
            self.size = (int(frame.image.shape[1]), int(frame.image.shape[0]))
            note = frame_size_note(self.worker.config.zones, self.size)
            if note is not None:
                self.warnings.append(note[1])
        if self.realtime:
            ahead = (frame.captured_at - self.first_t) - (time.perf_counter() - self.wall0)
            if ahead > 0:
                time.sleep(ahead)
        self.frames += 1
        self.last_t = frame.captured_at
        self.decode_ms.append(decode_s * 1000)
        self.clock.begin(frame.captured_at)
        start = time.perf_counter()
        if self.worker.offer(frame) is not None:
            self.frame_ms.append((time.perf_counter() - start) * 1000)

    def close_count_window(self) -> list[LaneCount]:
        """The clip ends inside a count window: an empty frame at the window's end closes it,
        as the next frame of a live camera would."""
        if self.first_t is None:
            return []
        rules = self.worker.rules
        size = rules.config.count_window_s
        end = (math.floor(self.last_t / size) + 1) * size
        return rules.step(
            FrameTracks(camera=self.worker.camera, frame_index=self.frames, captured_at=end, tracks=[])
        ).counts

    def report(self, video: Path, records: _Records, tracks: int, annotated: Path | None) -> ReplayReport:
        counts, vehicles = _tally(self.worker.config.zones.lanes, records.counts)
        return ReplayReport(
            camera=self.worker.camera,
            video=str(video),
            frame_size=self.size,
            frames=self.frames,
            processed=self.worker.processed,
            thinned=self.worker.thinned,
            errors=self.frames - self.worker.thinned - self.worker.processed,
            clip_s=round(self.last_t - (self.first_t or 0.0), 3),
            wall_s=round(time.perf_counter() - self.wall0, 3),
            frame_ms_p50=_percentile(self.frame_ms, 50),
            frame_ms_p95=_percentile(self.frame_ms, 95),
            frame_ms_max=round(max(self.frame_ms), 2) if self.frame_ms else None,
            decode_ms_p50=_percentile(self.decode_ms, 50),
            tracks=tracks,
            counts=counts,
            vehicles=vehicles,
            incidents=records.incidents,
            congestion=records.congestion,
            decisions=records.decisions,
            count_windows=records.counts,
            warnings=self.warnings,
            annotated=str(annotated) if annotated is not None else None,
        )


def _tally(lanes: Sequence[Lane], rows: Sequence[LaneCount]) -> tuple[dict[str, int], int]:
    """Counts over the clip per lane (lane entries) or, at count lines, per lane, line and
    direction; and the vehicles: per lane, its busiest line's crossings either way."""
    counts: dict[str, int] = {}
    per_line: dict[str, dict[str, int]] = {lane.name: {} for lane in lanes}
    for row in rows:
        key = row.lane if row.line is None else f"{row.lane}/{row.line}/{row.direction}"
        counts[key] = counts.get(key, 0) + row.count
        lines = per_line.setdefault(row.lane, {})
        lines[row.line or ""] = lines.get(row.line or "", 0) + row.count
    for lane in lanes:
        if not per_line[lane.name]:
            counts.setdefault(lane.name, 0)
    return counts, sum(max(lines.values(), default=0) for lines in per_line.values())


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def _open(video: Path) -> Any:
    if not video.is_file():
        raise ConfigError(f"video {video}: no such file")
    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as exc:
        raise ConfigError(f"video {video}: cannot be read: {exc}") from None
    if not container.streams.video:
        container.close()
        raise ConfigError(f"video {video}: has no video stream")
    return container


def _frame_rate(video: Path) -> Fraction:
    with _open(video) as container:
        rate = container.streams.video[0].average_rate
    return Fraction(rate) if rate else Fraction(10)


def _decode(video: Path, size: tuple[int, int] | None) -> Iterator[tuple[float, NDArray[np.uint8], float]]:
    """(presentation time s, BGR image, decode seconds) of every frame; `size` as the node scales."""
    with _open(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # offline: frame threads add latency nobody waits for
        rate = float(stream.average_rate or 10)
        frames = container.decode(stream)
        index = 0
        while True:
            start = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                raise ConfigError(f"video {video}: frame {index} cannot be decoded: {exc}") from None
            w, h = size if size is not None else (frame.width, frame.height)
            image = frame.to_ndarray(format="bgr24", width=w, height=h)
            t = float(frame.time) if frame.time is not None else index / rate
            yield t, image, time.perf_counter() - start
            index += 1


class _Annotator:
    """Writes the annotated clip (H.264) to a temporary file, moved into place when complete."""

    def __init__(self, path: Path, rate: Fraction) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.part")
        self.rate = rate
        self.container: Any = None
        self.stream: Any = None

    def _start(self, image: NDArray[np.uint8]) -> None:
        fmt = self.path.suffix.lstrip(".").lower() or "mp4"
        try:
            self.container = av.open(str(self.tmp), mode="w", format=fmt)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise ConfigError(f"--annotate {self.path}: cannot write a {fmt} file there: {exc}") from None
        self.stream = self.container.add_stream("libx264", rate=self.rate)
        self.stream.width, self.stream.height = image.shape[1] & ~1, image.shape[0] & ~1  # yuv420p: even
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": "23"}

    def write(
        self,
        image: NDArray[np.uint8],
        worker: CameraWorker,
        tracks: FrameTracks | None,
        incidents: list[Incident],
        t: float,
    ) -> None:
        if self.container is None:
            self._start(image)
        canvas = np.ascontiguousarray(image[: self.stream.height, : self.stream.width])
        draw_zones(canvas, worker.rules.zones, fill=0.2)
        draw_lines(canvas, [(line.name, line.points) for line in worker.rules.zones.count_lines])
        if tracks is not None:
            draw_tracks(canvas, tracks.tracks, min_hits=worker.rules.config.min_hits)
        draw_incidents(canvas, [i for i in incidents if 0 <= t - i.detected_at <= _BANNER_S])
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(canvas, format="bgr24")):
            self.container.mux(packet)

    def close(self) -> None:
        if self.container is None:
            raise ConfigError(f"--annotate {self.path}: the video had no frames to draw on")
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.container is not None:
            self.container.close()
        self.tmp.unlink(missing_ok=True)
