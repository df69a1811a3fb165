"""Synthetic network cameras: each streams its scene live, H.264 in Matroska over TCP, in real time.

The scenes are rendered beforehand (`cityedge.sim.pilot.scenes`), so the run's CPU goes to
the nodes, not to drawing traffic. One child process per node plays that node's cameras:
frame i leaves at `start_at + i / fps`, so the scene's ground truth, shifted to `start_at`,
is in the same wall time as the node's detections. A camera that connects late, or
reconnects, joins the live stream at its next keyframe.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import socket
import threading
import time
from typing import Any

from cityedge.sim.pilot.staging import CameraFeed

__all__ = ["CameraRig"]

# One frame per cluster, flushed at once: a live viewer gets each frame when it is made, not
# two at a time (which the node would read as a burst and thin).
_LIVE = {"live": "1", "cluster_time_limit": "1", "flush_packets": "1"}

log = logging.getLogger(__name__)


class _Viewer:
    """One viewer connection: the camera's compressed stream copied into Matroska on the socket."""

    def __init__(self, conn: socket.socket, template: Any) -> None:
        import av

        self.conn = conn
        self.file = conn.makefile("wb")
        self.out = av.open(self.file, "w", format="matroska", options=_LIVE)
        self.stream = self.out.add_stream_from_template(template)
        self.started = False  # a viewer starts at a keyframe, or it cannot decode

    def send(self, packet: Any) -> None:
        if not (self.started or packet.is_keyframe):
            return
        self.started = True
        packet.stream = self.stream
        self.out.mux(packet)
        self.file.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.out.close()
        with contextlib.suppress(OSError):
            self.file.close()
            self.conn.close()


def _play(feed: CameraFeed, video: str, start: Any) -> dict[str, Any]:
    """Stream the camera's rendered video live: packet k leaves at `start` + its timestamp."""
    import av

    server = socket.create_server(("127.0.0.1", feed.port))  # nodes may connect before the start
    while start.value <= 0:
        time.sleep(0.02)
    start_at = float(start.value)
    server.setblocking(False)
    viewer: _Viewer | None = None
    late, sent = 0.0, 0
    try:
        with av.open(video) as container:
            stream = container.streams.video[0]
            unit = float(stream.time_base or 0.001)
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                wait = start_at + packet.pts * unit - time.time()
                if wait > 0:
                    time.sleep(wait)
                late = max(late, -wait)
                viewer = _accept(server, stream, viewer)
                if viewer is None:
                    continue
                try:
                    viewer.send(packet)
                    sent += 1
                except OSError:
                    viewer.close()
                    viewer = None
    finally:
        if viewer is not None:
            viewer.close()
        server.close()
    return {"node": feed.node, "camera": feed.camera, "frames_sent": sent, "max_late_s": late}


def _accept(server: socket.socket, template: Any, viewer: _Viewer | None) -> _Viewer | None:
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
    return _Viewer(newest, template)


def _serve(feeds: list[tuple[CameraFeed, str]], results: Any, start: Any) -> None:
    """Child process: one thread per camera; each puts its result on `results` when done."""

    def play(feed: CameraFeed, video: str) -> None:
        try:
            results.put(_play(feed, video, start))
        except Exception as exc:  # the parent reports it; the other cameras play on
            results.put({"node": feed.node, "camera": feed.camera, "error": f"{type(exc).__name__}: {exc}"})

    threads = [threading.Thread(target=play, args=pair, daemon=True) for pair in feeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class CameraRig:
    """The district's synthetic cameras: one process per node, results collected at the end."""

    def __init__(self, feeds: list[CameraFeed], videos: list[str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.results: Any = ctx.Queue()
        self.start_at: Any = ctx.Value("d", 0.0)  # set by `play`: frame 0's wall time
        by_node: dict[str, list[tuple[CameraFeed, str]]] = {}
        for feed, video in zip(feeds, videos, strict=True):
            by_node.setdefault(feed.node, []).append((feed, video))
        self.procs = [
            ctx.Process(
                target=_serve, args=(group, self.results, self.start_at), name=f"cameras-{node}", daemon=True
            )
            for node, group in by_node.items()
        ]
        self.expected = len(feeds)

    def start(self) -> CameraRig:
        for proc in self.procs:
            proc.start()
        return self

    def play(self, start_at: float) -> None:
        """Every camera starts streaming at `start_at` (wall time)."""
        self.start_at.value = start_at

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
