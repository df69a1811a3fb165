"""Render each camera's scene once, before the run: H.264 video plus the scene's ground truth.

Rendering happens in a process pool (one per core) and is cached by content: the scenario
(its timetable, seed and size, never its start time) and the scene code's own hash name the
files, so a second run of the same spec starts at once. Ground truth is kept relative to
frame 0 and shifted to the run's start when it is read.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from cityedge.sim.pilot.staging import CameraFeed

__all__ = ["cache_dir", "render_all", "shifted_truth"]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cityedge" / "pilot-scenes"


def _key(feed: CameraFeed) -> str:
    from cityedge.sim import scene

    # the scene's own code is part of the key (a package hashes all of its modules)
    source = Path(inspect.getfile(scene))
    files = sorted(source.parent.glob("*.py")) if source.name == "__init__.py" else [source]
    code = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    scenario = replace(feed.scenario, start_time=0.0, name="")
    return hashlib.sha256(f"{code}|{scenario!r}".encode()).hexdigest()[:24]


def _render(scenario: Any, video: str) -> None:
    """Child process: draw every frame, encode it (x264 ultrafast, 2 s GOP), save the truth."""
    import av

    from cityedge.sim.scene import SceneRun, frames, scene_zones

    run = SceneRun(scenario, zones=scene_zones(scenario))
    part = video + ".part"
    with av.open(part, "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=round(scenario.fps))
        stream.width, stream.height, stream.pix_fmt = scenario.size[0], scenario.size[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(round(scenario.fps * 2))}
        for index, _t, image in frames(scenario, run):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    truth = Path(video + ".truth.json")
    truth.write_text(json.dumps([asdict(i) for i in run.incidents]))
    os.replace(part, video)  # the video last: its presence means both files are whole


def render_all(feeds: list[CameraFeed], directory: Path | None = None) -> list[str]:
    """The rendered video of every feed (rendering what the cache lacks); same order as `feeds`."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    videos = [str(directory / f"{_key(f)}.mkv") for f in feeds]
    pairs = zip(feeds, videos, strict=True)
    todo = {v: replace(f.scenario, start_time=0.0) for f, v in pairs if not Path(v).exists()}
    if todo:
        workers = min(len(todo), os.cpu_count() or 1)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for future in [pool.submit(_render, sc, v) for v, sc in todo.items()]:
                future.result()
    return videos


def shifted_truth(video: str, start_at: float) -> list[dict[str, Any]]:
    """The scene's ground truth in wall time, for a video whose frame 0 played at `start_at`."""
    truth = json.loads(Path(video + ".truth.json").read_text())
    for gt in truth:
        gt["start"] += start_at
        gt["end"] += start_at
    return list(truth)
