"""Synthetic network cameras: each plays its scene live, H.264 in Matroska over TCP, in real time.

One child process per node renders and encodes that node's cameras (as real cameras would,
off the node's CPU budget of the agent). Frame i leaves at `start_at + i / fps`, so the
scene's ground truth, stamped from `start_at`, is in the same wall time as the node's
detections. A camera that connects late, or reconnects, joins the live stream where it is.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import socket
import threading
import time
from dataclasses import asdict
from typing import Any

from cityedge.sim.pilot.staging import CameraFeed

__all__ = ["CameraRig"]

# One frame per cluster, flushed at once: a live viewer gets each frame when it is made, not
# two at a time (which the node would read as a burst and thin).
_LIVE = {"live": "1", "cluster_time_limit": "1", "flush_packets": "1"}

log = logging.getLogger(__name__)


class _Stream:
    """One viewer connection: an encoder and a Matroska muxer writing into the socket."""

    def __init__(self, conn: socket.socket, feed: CameraFeed) -> None:
        import av

        self.conn = conn
        self.file = conn.makefile("wb")
        self.out = av.open(self.file, "w", format="matroska", options=_LIVE)
        sc = feed.scenario
        stream = self.out.add_stream("libx264", rate=round(sc.fps))
        stream.width, stream.height, stream.pix_fmt = sc.size[0], sc.size[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(round(sc.fps * 2))}
        self.stream = stream
        self.count = 0

    def send(self, image: Any) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = self.count
        self.count += 1
        for packet in self.stream.encode(frame):
            self.out.mux(packet)
        self.file.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            for packet in self.stream.encode():
                self.out.mux(packet)
            self.out.close()
        with contextlib.suppress(OSError):
            self.file.close()
            self.conn.close()


def _play(feed: CameraFeed) -> dict[str, Any]:
    """Render, pace and stream one camera's scene; return its ground truth and timing."""
    from cityedge.sim.scene import SceneRun, frames, scene_zones

    sc = feed.scenario
    run = SceneRun(sc, zones=scene_zones(sc))
    server = socket.create_server(("127.0.0.1", feed.port))
    server.setblocking(False)
    viewer: _Stream | None = None
    late, sent = 0.0, 0
    try:
        for index, _t, image in frames(sc, run):
            due = sc.start_time + index / sc.fps
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            late = max(late, -wait)
            viewer = _accept(server, feed, viewer)
            if viewer is None:
                continue
            try:
                viewer.send(image)
                sent += 1
            except OSError:
                viewer.close()
                viewer = None
    finally:
        if viewer is not None:
            viewer.close()
        server.close()
    truth = [asdict(i) for i in run.incidents]
    return {"node": feed.node, "camera": feed.camera, "truth": truth, "frames_sent": sent, "max_late_s": late}


def _accept(server: socket.socket, feed: CameraFeed, viewer: _Stream | None) -> _Stream | None:
    """The newest connection wins: a node that connects again has given up on the old one."""
    newest = None
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            break
        if newest is not None:
            newest.close()
        newest = conn
    if newest is None:
        return viewer
    if viewer is not None:
        viewer.close()
    newest.setblocking(True)
    return _Stream(newest, feed)


def _serve(feeds: list[CameraFeed], results: Any) -> None:
    """Child process: one thread per camera; each puts its result on `results` when done."""

    def play(feed: CameraFeed) -> None:
        try:
            results.put(_play(feed))
        except Exception as exc:  # the parent reports it; the other cameras play on
            results.put({"node": feed.node, "camera": feed.camera, "error": f"{type(exc).__name__}: {exc}"})

    threads = [threading.Thread(target=play, args=(f,), daemon=True) for f in feeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class CameraRig:
    """The district's synthetic cameras: one process per node, results collected at the end."""

    def __init__(self, feeds: list[CameraFeed]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.results: Any = ctx.Queue()
        by_node: dict[str, list[CameraFeed]] = {}
        for feed in feeds:
            by_node.setdefault(feed.node, []).append(feed)
        self.procs = [
            ctx.Process(target=_serve, args=(group, self.results), name=f"cameras-{node}", daemon=True)
            for node, group in by_node.items()
        ]
        self.expected = len(feeds)

    def start(self) -> CameraRig:
        for proc in self.procs:
            proc.start()
        return self

    def collect(self, timeout: float) -> list[dict[str, Any]]:
        """Every camera's result (ground truth, frames sent, lateness), waiting up to `timeout`."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < self.expected and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                out.append(self.results.get(timeout=0.5))
        return out

    def stop(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
