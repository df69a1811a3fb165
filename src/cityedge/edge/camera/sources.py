"""Camera sources: RTSP, HTTP, USB (V4L2) and files through FFmpeg (PyAV), one thread each.

A source never crashes its agent: a bad URL, a corrupt file or a stalled stream becomes a
status with a reason, and the reader reconnects with exponential backoff and full jitter.
Frames reach the consumer through a one-slot mailbox (latest frame wins, drops counted),
and compressed packets can be teed to a `PacketSink` (retention) without re-encoding.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import av
import av.error
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from cityedge.edge.camera.luma import grey_image
from cityedge.protocol.errors import ConfigError
from cityedge.transport.backoff import full_jitter_delay

__all__ = [
    "Frame",
    "FrameSource",
    "Mailbox",
    "PacketSink",
    "SourceConfig",
    "SourceState",
    "SourceStatus",
    "grab_frame",
    "is_live",
]

log = logging.getLogger(__name__)


class SourceState(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STALLED = "stalled"
    ERROR = "error"
    ENDED = "ended"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SourceStatus:
    state: SourceState
    reason: str
    since: float
    reconnects: int
    frames: int
    dropped: int


@dataclass(frozen=True)
class Frame:
    """One decoded frame. `captured_at` (Unix s) is when it was received, or presented if paced."""

    index: int
    captured_at: float
    image: NDArray[np.uint8]


class PacketSink(Protocol):
    """Receives the compressed stream as it is read (stream copy, no decode needed)."""

    def open_stream(self, stream: av.video.stream.VideoStream) -> None: ...
    def packet(self, packet: Any, wall_time: float) -> None: ...
    def close_stream(self) -> None: ...


class SourceConfig(BaseModel):
    """How to read one camera. `url`: rtsp://, http(s)://, usb:N or /dev/videoN, a file path."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(min_length=1)
    realtime: bool | None = None  # None: pace files at their frame rate, never pace live sources
    loop: bool = False
    size: tuple[int, int] | None = None  # (width, height) the decoder scales to; None keeps native
    stall_timeout_s: float = Field(default=5.0, gt=0)
    open_timeout_s: float = Field(default=5.0, gt=0)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_cap_s: float = Field(default=30.0, gt=0)
    decode_threads: int = Field(default=1, ge=0)  # frame threads add frames of latency: keep 1 live
    options: dict[str, str] = Field(default_factory=dict)  # FFmpeg options, e.g. rtsp_transport
    grey: bool = False  # deliver grey images (from the luma plane): for cameras that need no colour


def is_live(url: str) -> bool:
    return ("://" in url and not url.startswith("file://")) or url.startswith(("usb:", "/dev/video"))


def _open_args(cfg: SourceConfig) -> tuple[str, dict[str, Any]]:
    url = cfg.url
    kwargs: dict[str, Any] = {"timeout": (cfg.open_timeout_s, cfg.stall_timeout_s)}
    options = dict(cfg.options)
    if url.startswith("usb:"):
        url = f"/dev/video{url.removeprefix('usb:')}"
    if url.startswith("/dev/video"):
        kwargs["format"] = "v4l2"
    elif url.startswith("rtsp://"):
        options.setdefault("rtsp_transport", "tcp")  # UDP loses packets and smears frames
    elif url.startswith("file://"):
        url = url.removeprefix("file://")
    if options:
        kwargs["options"] = options
    return url, kwargs


class Mailbox:
    """A one-slot mailbox: `put` replaces an unread frame (counted as dropped), never queues."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Frame | None = None
        self.dropped = 0

    def put(self, item: Frame) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def get(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


class _Stalled(Exception):
    pass


class _Pacer:
    """Releases file frames at their presentation time; a loop restarts the clock seamlessly."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], object]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._origin: float | None = None
        self._offset = 0.0
        self._last = 0.0

    def wait(self, pts_s: float) -> None:
        now = self._clock()
        if self._origin is None:
            self._origin = now - pts_s
        self._last = self._offset + pts_s
        delay = self._origin + self._last - now
        if delay > 0:
            self._sleep(delay)

    def next_pass(self, frame_duration: float) -> None:
        self._offset = self._last + frame_duration


class FrameSource:
    """Reads one camera in a daemon thread; `read()` returns the latest frame or None."""

    def __init__(
        self,
        config: SourceConfig,
        *,
        packet_sink: PacketSink | None = None,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        name: str | None = None,
    ) -> None:
        self.config = config
        self.name = name or config.url
        self._sink = packet_sink
        self._rand = rand
        self._mailbox = Mailbox()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = SourceStatus(SourceState.CONNECTING, "not started", time.time(), 0, 0, 0)
        self.history: collections.deque[tuple[SourceState, str]] = collections.deque(maxlen=64)
        self.backoff_delays: collections.deque[float] = collections.deque(maxlen=64)
        self._frames = 0
        self._conn_frames = 0
        self._reconnects = 0
        self._clock = clock
        self._sleep = sleep or self._stop.wait  # pacing sleeps must wake up on stop()
        self.paced = config.realtime if config.realtime is not None else not is_live(config.url)

    # --- consumer side -------------------------------------------------------------------
    def start(self) -> FrameSource:
        self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._set(SourceState.STOPPED, "stopped")

    def read(self, timeout: float = 1.0) -> Frame | None:
        return self._mailbox.get(timeout)

    @property
    def dropped(self) -> int:
        return self._mailbox.dropped

    def status(self) -> SourceStatus:
        with self._lock:
            s = self._status
            return SourceStatus(s.state, s.reason, s.since, self._reconnects, self._frames, self.dropped)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- reader thread -------------------------------------------------------------------
    def _set(self, state: SourceState, reason: str) -> None:
        with self._lock:
            if (self._status.state, self._status.reason) != (state, reason):
                self.history.append((state, reason))
                self._status = SourceStatus(state, reason, time.time(), 0, 0, 0)
        if state in (SourceState.ERROR, SourceState.STALLED):
            log.warning("camera %s: %s: %s", self.name, state.value, reason)

    def _run(self) -> None:
        attempt, next_pass = 0, False
        pacer = _Pacer(self._clock, self._sleep)
        while not self._stop.is_set():
            if not next_pass:  # a looping file's next pass is no reconnect: it stays "streaming"
                self._set(SourceState.CONNECTING, f"opening {self.config.url}")
            self._conn_frames, next_pass = 0, False
            try:
                self._stream_once(pacer)
            except Exception as exc:  # any failure of a camera is a status, never a dead agent
                self._failed(exc)
                pacer = _Pacer(self._clock, self._sleep)  # a reopened file starts its clock afresh
            else:
                if not self.config.loop:
                    self._set(SourceState.ENDED, "end of stream")
                    return
                next_pass = True
                continue
            finally:
                if self._sink is not None:
                    self._close_sink()
            if self._stop.is_set():
                return
            with self._lock:
                self._reconnects += 1
            # A stream that delivered frames is retried at once; repeated failures back off.
            attempt = 0 if self._conn_frames else attempt + 1
            if attempt:
                cfg = self.config
                delay = full_jitter_delay(attempt - 1, cfg.backoff_base_s, cfg.backoff_cap_s, self._rand())
                self.backoff_delays.append(delay)
                self._stop.wait(delay)

    def _failed(self, exc: Exception) -> None:
        stalled = isinstance(exc, _Stalled) or (isinstance(exc, av.error.ExitError) and self._conn_frames > 0)
        if stalled:
            reason = (
                str(exc) if isinstance(exc, _Stalled) else f"no data for {self.config.stall_timeout_s:g} s"
            )
            self._set(SourceState.STALLED, reason)
        else:
            self._set(SourceState.ERROR, _describe(exc))

    def _close_sink(self) -> None:
        assert self._sink is not None
        try:
            self._sink.close_stream()
        except Exception:
            log.exception("camera %s: packet sink failed to close", self.name)

    def _stream_once(self, pacer: _Pacer) -> None:
        """Open and read until the end of the stream or stop(); failures raise."""
        url, kwargs = _open_args(self.config)
        if not ("://" in url or url.startswith("/dev/")) and not Path(url).is_file():
            raise FileNotFoundError(f"no such file: {url}")
        with av.open(url, **kwargs) as container:
            if not container.streams.video:
                raise av.error.InvalidDataError(0, f"{url} has no video stream")
            stream = container.streams.video[0]
            stream.thread_count = self.config.decode_threads
            if self._sink is not None:
                self._sink.open_stream(stream)
            self._demux(container, stream, pacer)
        duration = float((stream.average_rate and 1 / stream.average_rate) or 0.1)
        pacer.next_pass(duration)

    def _demux(self, container: Any, stream: Any, pacer: _Pacer) -> None:
        last_frame = time.monotonic()
        for packet in container.demux(stream):
            if self._stop.is_set():
                return
            # The watchdog runs on wall time even when pacing runs on an injected clock.
            now = time.monotonic()
            frames = packet.decode()
            if packet.size and self._sink is not None:
                self._tee(packet)
            if frames:
                last_frame = now
            elif now - last_frame > self.config.stall_timeout_s:
                raise _Stalled(f"no decodable frame for {self.config.stall_timeout_s:g} s")
            for frame in frames:
                self._deliver(frame, pacer)

    def _tee(self, packet: Any) -> None:
        # After decode: muxing rebases the packet's timestamps in place. A failing recorder
        # must not cost the camera its detection, so its errors stop here.
        assert self._sink is not None
        try:
            self._sink.packet(packet, time.time())
        except Exception:
            log.exception("camera %s: packet sink failed", self.name)

    def _deliver(self, frame: av.VideoFrame, pacer: _Pacer) -> None:
        if self.paced and frame.time is not None:
            pacer.wait(float(frame.time))
        captured_at = time.time()  # before conversion: pixel format and scaling count as latency
        size = self.config.size
        image: NDArray[np.uint8]
        if self.config.grey:
            image = grey_image(frame, size)
        elif size is None:
            image = frame.to_ndarray(format="bgr24")  # type: ignore[assignment]
        else:
            image = frame.to_ndarray(format="bgr24", width=size[0], height=size[1])  # type: ignore[assignment]
        self._mailbox.put(Frame(self._frames, captured_at, image))
        with self._lock:
            self._frames += 1
        self._conn_frames += 1
        if self._status.state is not SourceState.STREAMING:
            self._set(SourceState.STREAMING, f"{frame.width}x{frame.height}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, av.error.ExitError):
        return "timed out waiting for data (stalled or unreachable)"
    return f"{type(exc).__name__}: {exc}"


def grab_frame(config: SourceConfig, at_s: float = 0.0) -> NDArray[np.uint8]:
    """One BGR frame of the source, opened as a camera's reader opens it (same URL forms,
    options, timeouts and decode size); files at `at_s` seconds. Failures raise ConfigError."""
    url, kwargs = _open_args(config)
    if not ("://" in url or url.startswith("/dev/")) and not Path(url).is_file():
        raise ConfigError(f"source {config.url}: no such file")
    try:
        with av.open(url, **kwargs) as container:
            if not container.streams.video:
                raise ConfigError(f"source {config.url}: has no video stream")
            stream = container.streams.video[0]
            if at_s > 0 and not is_live(config.url) and stream.time_base:
                container.seek(int(at_s / stream.time_base), stream=stream)  # the keyframe before
            for frame in container.decode(stream):
                if frame.time is not None and frame.time < at_s - 1e-6:
                    continue
                w, h = config.size or (frame.width, frame.height)
                return np.asarray(frame.to_ndarray(format="bgr24", width=w, height=h), np.uint8)
    except av.error.FFmpegError as exc:
        raise ConfigError(f"source {config.url}: {_describe(exc)}") from None
    raise ConfigError(f"source {config.url}: no frame at {at_s:g} s (the stream ended before)")
