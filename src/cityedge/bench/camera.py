"""`cityedge bench camera`: N cameras of 1280x720 H.264 at 10 fps, in real time, through the node pipeline.

Returns one JSON object (cameras, fps_target, fps_sustained, dropped_frames, p50/p95/p99 ms
capture to decision, cpu_percent of the whole machine, the CPU of the agent and its camera
worker processes). The clip (the synthetic scene of `cityedge.sim.scene`) and, for
`--detector onnx`, a YOLOv8n-sized model with random weights are made once into a cache
directory. `processes` places the cameras as the agent does (`camera_workers`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import psutil
from prometheus_client import CollectorRegistry

from cityedge.bench.camera_model import BENCH_CLASSES, build_bench_model
from cityedge.edge.camera.config import CameraConfig
from cityedge.edge.camera.processes import Cameras, build_cameras, process_count
from cityedge.protocol.errors import ConfigError

__all__ = ["SIZE", "BenchOptions", "bench_camera", "write_bench_video"]

SIZE = (1280, 720)
_READY_TIMEOUT_S = 120.0  # worker processes import OpenCV, PyAV and ONNX Runtime before their first frame


@dataclass(frozen=True)
class BenchOptions:
    cameras: int = 4
    fps: int = 10
    seconds: float = 30.0
    detector: str = "motion"
    warmup: float = 5.0
    scene: str = "clear_day"
    int8: bool = False
    max_crops: int = 1
    processes: int | Literal["auto"] = "auto"
    cameras_per_process: int = 8

    def check(self) -> None:
        if self.detector not in ("motion", "onnx"):
            raise ConfigError(f"--detector must be motion or onnx, not {self.detector!r}")
        if self.processes != "auto" and self.processes < 0:
            raise ConfigError(f"--processes must be auto or a number >= 0, not {self.processes}")


def parse_processes(value: str) -> int | Literal["auto"]:
    """`--processes`: `auto` or a whole number >= 0 (0: every camera in one process)."""
    if value == "auto":
        return "auto"
    if not value.isdigit():
        raise ConfigError(f"--processes must be auto or a number >= 0, not {value!r}")
    return int(value)


class _CountingSink:
    def __init__(self) -> None:
        self.count = 0
        self.decisions = 0

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: Any) -> None:
        self.count += 1

    def publish(self, suffix: str, payload: bytes) -> bool:
        self.decisions += 1
        return True


def bench_camera(opts: BenchOptions, cache_dir: Path) -> dict[str, Any]:
    """Run the cameras in real time, wait until each judged a frame, warm up, measure a window."""
    opts.check()
    cache_dir.mkdir(parents=True, exist_ok=True)
    video, zones = write_bench_video(cache_dir, opts.fps, opts.scene)
    detector = _detector_section(opts, cache_dir)
    configs = [_camera_config(i, video, zones, opts.fps, detector) for i in range(opts.cameras)]
    processes = process_count(opts.cameras, opts.processes, opts.cameras_per_process)
    sink = _CountingSink()
    pipeline = build_cameras(
        configs, processes, sink=sink, publish_local=sink.publish, registry=CollectorRegistry()
    )
    pipeline.start(1.0 / opts.fps / opts.cameras)  # staggered like real, unsynchronised cameras
    try:
        _wait_ready(pipeline)
        time.sleep(opts.warmup)
        window = _measure(pipeline, opts.seconds)
    finally:
        pipeline.stop()
    result = _result(opts, window, video)
    return result | {"processes": processes, "decisions": sink.decisions, "records": sink.count}


def _wait_ready(pipeline: Cameras) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not all(s.frames > 0 for s in pipeline.stats(time.time())):
        if time.monotonic() > deadline:
            raise ConfigError(f"bench camera: a camera judged no frame within {_READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


@dataclass(frozen=True)
class _Window:
    seconds: float
    frames: list[int]
    dropped: int
    inferences: int
    latencies: list[float]
    states: dict[str, str]
    machine_cpu: float
    own_cpu_s: float
    rss_bytes: int


def _measure(pipeline: Cameras, seconds: float) -> _Window:
    procs = [psutil.Process(os.getpid()), *psutil.Process(os.getpid()).children(recursive=True)]
    psutil.cpu_percent(None)
    cpu0, t0, before = _cpu_s(procs), time.time(), pipeline.stats()
    time.sleep(seconds)
    machine_cpu, cpu1, t1, after = psutil.cpu_percent(None), _cpu_s(procs), time.time(), pipeline.stats()
    time.sleep(1.0)  # a worker process reports twice a second: let the window's last frames arrive
    # frames judged per camera, counted by capture time (a worker's counters come in steps)
    frames = [len(w.latencies(t0)) - len(w.latencies(t1)) for w in pipeline.workers]
    return _Window(
        seconds=t1 - t0,
        frames=frames,
        dropped=sum(b.dropped - a.dropped for a, b in zip(before, after, strict=True)),
        inferences=sum(b.inferences - a.inferences for a, b in zip(before, after, strict=True)),
        latencies=[x for x in pipeline.latencies(since=t0) if x is not None],
        states={s.camera: s.source_state for s in after},
        machine_cpu=machine_cpu,
        own_cpu_s=cpu1 - cpu0,
        rss_bytes=sum(_rss(p) for p in procs),
    )


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


def _result(opts: BenchOptions, w: _Window, video: Path) -> dict[str, Any]:
    p50, p95, p99 = (round(float(np.percentile(w.latencies, q)) * 1000, 1) for q in (50, 95, 99))
    cpus = psutil.cpu_count() or 1
    onnx = opts.detector == "onnx"
    return {
        "cameras": opts.cameras,
        "fps_target": opts.fps,
        "fps_sustained": round(min(w.frames) / w.seconds, 2),
        "dropped_frames": w.dropped,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "cpu_percent": round(w.machine_cpu, 1),
        # the agent and its camera worker processes, as a share of the whole machine
        "process_cpu_percent": round(w.own_cpu_s / w.seconds / cpus * 100, 1),
        # CPU time per judged frame: on a shared machine this, not wall-clock figures, says what it costs.
        "cpu_ms_per_frame": round(w.own_cpu_s / max(1, sum(w.frames)) * 1000, 1),
        "detector": opts.detector + ("-int8" if onnx and opts.int8 else ""),
        "scene": video.name,
        "max_crops": opts.max_crops if onnx else None,
        "inferences_per_frame": round(w.inferences / max(1, sum(w.frames)), 2) if onnx else None,
        "frame_size": list(SIZE),
        "seconds": round(w.seconds, 1),
        "frames": sum(w.frames),
        "source_states": w.states,
        "rss_bytes": w.rss_bytes,
        "cpus": cpus,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _detector_section(opts: BenchOptions, cache: Path) -> dict[str, Any]:
    if opts.detector == "motion":
        return {"name": "motion"}
    model = build_bench_model(cache, int8=opts.int8)
    classes = [f"class{k}" for k in range(BENCH_CLASSES)]
    return {"name": "onnx", "options": {"model": str(model), "classes": classes, "max_crops": opts.max_crops}}


def _camera_config(i: int, video: Path, zones: dict[str, Any], fps: int, det: dict[str, Any]) -> CameraConfig:
    cam = f"cam-{i + 1}"
    return CameraConfig.model_validate(
        {
            "id": cam,
            "url": str(video),
            "fps": fps,
            "loop": True,
            "realtime": True,
            "detector": det,
            "zones": zones | {"camera": cam},
        }
    )


def write_bench_video(cache: Path, fps: int, scene: str = "clear_day") -> tuple[Path, dict[str, Any]]:
    """A 1280x720 H.264 clip of the synthetic test bed's scene (a pole camera over four lanes
    with staged incidents; made once) and the zones of its lanes."""
    from cityedge.sim.scenarios import preset
    from cityedge.sim.scene import scene_zones, write_video

    scenario = preset(scene, slots=1, size=SIZE, fps=float(fps))  # 62 s: one slot of incidents
    path = cache / f"{scene}-{SIZE[0]}x{SIZE[1]}-{fps}fps.mp4"
    if not path.exists():
        write_video(scenario, path, size=SIZE, fps=float(fps))
    return path, scene_zones(scenario).model_dump(mode="json")
