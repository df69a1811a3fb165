"""Camera sources: pacing, latest-frame policy, looping, and bad input that never kills the agent."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError

from cityedge.edge.camera.sources import (
    Frame,
    FrameSource,
    Mailbox,
    SourceConfig,
    SourceState,
    SourceStatus,
)
from cityedge.sim.brokers import free_port


def write_test_video(
    path: Path, frames: int = 20, size: tuple[int, int] = (160, 96), fps: int = 10, fmt: str | None = None
) -> Path:
    """A small H.264 clip with a square moving right, one keyframe every 5 frames."""
    w, h = size
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "5"}
        for i in range(frames):
            img = np.full((h, w, 3), 40, np.uint8)
            x = (i * 6) % (w - 16)
            img[h // 2 - 8 : h // 2 + 8, x : x + 16] = (0, 0, 230)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `predicate` holds (a generous deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.02)


def fast(url: str | Path, **kw: object) -> SourceConfig:
    base: dict[str, object] = {
        "url": str(url),
        "realtime": False,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
        "open_timeout_s": 2.0,
        "stall_timeout_s": 2.0,
    }
    return SourceConfig.model_validate(base | kw)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_test_video(tmp_path / "clip.mp4")


def test_mailbox_keeps_only_the_latest_frame_and_counts_the_rest() -> None:
    box = Mailbox()
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(3):
        box.put(Frame(i, float(i), img))
    got = box.get(timeout=0.0)
    assert got is not None
    assert got.index == 2
    assert box.dropped == 2
    assert box.get(timeout=0.01) is None


def test_a_slow_consumer_gets_the_newest_frame_and_older_frames_are_dropped(clip: Path) -> None:
    src = FrameSource(fast(clip)).start()
    wait_for(lambda: src.status().state is SourceState.ENDED)
    frame = src.read(timeout=0.1)
    status = src.status()
    assert frame is not None
    assert frame.index == 19
    assert frame.image.shape == (96, 160, 3)
    assert (status.frames, status.dropped) == (20, 19)
    assert src.read(timeout=0.01) is None  # nothing queued behind the latest frame


def test_the_decoder_scales_to_the_configured_size(clip: Path) -> None:
    src = FrameSource(fast(clip, size=(80, 48))).start()
    wait_for(lambda: src.status().state is SourceState.ENDED)
    frame = src.read(timeout=0.1)
    assert frame is not None
    assert frame.image.shape == (48, 80, 3)


def test_a_file_is_paced_at_its_frame_rate_by_default(clip: Path) -> None:
    """Pacing asks to sleep until each frame's presentation time (an injected clock)."""
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    cfg = SourceConfig(url=str(clip))
    src = FrameSource(cfg, clock=lambda: now[0], sleep=sleep).start()
    wait_for(lambda: src.status().state is SourceState.ENDED)
    assert src.paced
    assert len(slept) == 19  # every frame after the first waits for its turn
    assert sum(slept) == pytest.approx(1.9, abs=1e-6)  # 20 frames at 10 fps span 1.9 s
    assert (
        not SourceConfig(url="rtsp://cam/1").realtime
        and not FrameSource(SourceConfig(url="rtsp://x/1")).paced
    )


def test_a_looping_file_keeps_streaming_with_rising_frame_indices(clip: Path) -> None:
    src = FrameSource(fast(clip, loop=True)).start()
    try:
        wait_for(lambda: src.status().frames > 45)
        assert src.status().state is SourceState.STREAMING
        frame = src.read(timeout=1.0)
        assert frame is not None
        assert frame.index > 40
        assert src.status().reconnects == 0  # a new pass is not a reconnect
    finally:
        src.stop()


def assert_keeps_retrying(src: FrameSource, reason_part: str) -> SourceStatus:
    wait_for(lambda: src.status().reconnects >= 2)
    status = src.status()
    errors = [reason for state, reason in src.history if state is SourceState.ERROR]
    assert errors
    assert all(reason_part.lower() in r.lower() for r in errors), errors
    assert src.alive  # the reader thread is still there, retrying
    src.stop()
    assert not src.alive
    assert src.status().state is SourceState.STOPPED
    return status


def test_an_unreachable_camera_reports_an_error_and_reconnects_with_backoff() -> None:
    url = f"rtsp://127.0.0.1:{free_port()}/cam1"
    status = assert_keeps_retrying(FrameSource(fast(url)).start(), "refused")
    assert status.frames == 0


def test_reconnect_delays_grow_exponentially_up_to_the_cap_with_jitter() -> None:
    url = f"rtsp://127.0.0.1:{free_port()}/cam1"
    cfg = fast(url, backoff_base_s=0.01, backoff_cap_s=0.04)
    src = FrameSource(cfg, rand=lambda: 0.5).start()  # jitter draws the middle of each window
    try:
        wait_for(lambda: len(src.backoff_delays) >= 5)
    finally:
        src.stop()
    assert list(src.backoff_delays)[:5] == pytest.approx([0.005, 0.01, 0.02, 0.02, 0.02])


def test_a_missing_usb_camera_reports_an_error_and_reconnects() -> None:
    assert_keeps_retrying(FrameSource(fast("usb:97")).start(), "video97")


def test_a_corrupt_file_reports_invalid_data_and_reconnects(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    assert_keeps_retrying(FrameSource(fast(bad)).start(), "invalid data")


def test_a_truncated_file_reports_an_error_and_reconnects(tmp_path: Path, clip: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # moov atom lost: unreadable
    assert_keeps_retrying(FrameSource(fast(cut)).start(), "error")


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    body = b""
    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        self.wfile.write(self.body)  # a few frames' worth, then the camera goes silent
        self.wfile.flush()
        self.release.wait(30)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stalling_camera(tmp_path: Path) -> Iterator[str]:
    ts = write_test_video(tmp_path / "cam.ts", frames=30, fmt="mpegts").read_bytes()
    handler = type("Handler", (_StallingHandler,), {"body": ts[: len(ts) // 2], "release": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cam.ts"
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def test_a_stream_that_stalls_is_reported_stalled_and_reconnected(stalling_camera: str) -> None:
    src = FrameSource(fast(stalling_camera, stall_timeout_s=0.5, open_timeout_s=1.0)).start()
    try:
        wait_for(lambda: src.status().reconnects >= 1, timeout=20)
        states = [state for state, _ in src.history]
        assert SourceState.STREAMING in states
        assert SourceState.STALLED in states
        assert states.index(SourceState.CONNECTING, states.index(SourceState.STALLED)) > 0  # it reconnected
        assert src.status().frames > 0
        assert src.alive
    finally:
        src.stop()


def test_unknown_source_options_are_rejected_by_name() -> None:
    with pytest.raises(ValidationError, match="fps_cap"):
        SourceConfig.model_validate({"url": "x.mp4", "fps_cap": 3})
