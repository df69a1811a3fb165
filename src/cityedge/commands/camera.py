"""`cityedge bench camera`: N cameras of 1280x720 H.264 at 10 fps, in real time, through the node pipeline.

Prints one JSON object (cameras, fps_target, fps_sustained, dropped_frames, p50/p95/p99 ms
capture to decision, cpu_percent of the whole machine). The clip and, for `--detector onnx`,
a YOLOv8n-sized model with random weights are generated once into a cache directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

__all__ = ["BenchOptions", "bench_camera", "build_bench_model", "register", "write_bench_video"]

_DEFAULT_CACHE = Path.home() / ".cache" / "cityedge" / "bench-camera"
SIZE = (1280, 720)
# YOLOv8n: 8.7 GFLOPs at 640x640 as Ultralytics counts them (2 FLOPs per multiply-accumulate),
# so 8.7 / 4 = 2.2 GFLOPs = 1.09 G multiply-accumulates at 320x320. The bench model's conv
# stack is sized to the same MAC count (counted layer by layer in build_bench_model).
YOLOV8N_320_MACS = 8.7e9 / 2 / 4
_BENCH_CLASSES = 80


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    bench_app.command("camera")(bench_camera_command)


def bench_camera_command(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (the only output format)."),
    cameras: int = typer.Option(4, "--cameras", min=1, max=64),
    fps: int = typer.Option(10, "--fps", min=1, max=30),
    seconds: float = typer.Option(30.0, "--seconds", min=1.0, help="Measured window after warm-up."),
    detector: str = typer.Option("motion", "--detector", help="motion | onnx (YOLOv8n-sized, motion-gated)."),
    warmup: float = typer.Option(5.0, "--warmup", min=0.0, help="Seconds run before measuring."),
    scene: str = typer.Option("clear_day", "--scene", help="clear_day | dusk_noise | heavy_traffic."),
    int8: bool = typer.Option(False, "--int8", help="onnx: the same graph quantized to int8 (QDQ)."),
    max_crops: int = typer.Option(1, "--max-crops", min=1, help="onnx: motion crops per frame at most."),
    cache_dir: Path = typer.Option(_DEFAULT_CACHE, "--cache-dir", help="Where the clip and model are kept."),
) -> None:
    """Run N cameras in real time through sources, perception, rules and decisions; print figures."""
    from cityedge.protocol.errors import ConfigError

    if detector not in ("motion", "onnx"):
        raise ConfigError(f"--detector must be motion or onnx, not {detector!r}")
    options = BenchOptions(cameras, fps, seconds, detector, warmup, scene, int8, max_crops)
    result = bench_camera(options, cache_dir)
    typer.echo(json.dumps(result, indent=None if json_out else 2))


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


def bench_camera(opts: BenchOptions, cache_dir: Path) -> dict[str, Any]:
    import os
    import threading
    import time

    import numpy as np
    import psutil
    from prometheus_client import CollectorRegistry

    from cityedge.edge.camera.pipeline import CameraPipeline

    cache_dir.mkdir(parents=True, exist_ok=True)
    cameras, fps, seconds = opts.cameras, opts.fps, opts.seconds
    video, zones = write_bench_video(cache_dir, fps, opts.scene)
    detector = _detector_section(opts, cache_dir)
    configs = [_camera_config(i, video, zones, fps, detector) for i in range(cameras)]
    sink, published = _CountingSink(), [0]
    pipeline = CameraPipeline(
        configs,
        sink=sink,
        publish_local=lambda _s, _p: published.__setitem__(0, published[0] + 1),
        registry=CollectorRegistry(),
    )
    stop = threading.Event()
    for worker in pipeline.workers:  # staggered like real, unsynchronised cameras
        worker.start()
        stop.wait(1.0 / fps / cameras)
    stop.wait(opts.warmup)
    proc = psutil.Process(os.getpid())
    psutil.cpu_percent(None)
    cpu0, t0 = proc.cpu_times(), time.time()
    frames0 = [w.processed for w in pipeline.workers]
    dropped0 = sum(w.source.dropped for w in pipeline.workers)
    runs0 = _inferences(pipeline.workers)
    stop.wait(seconds)
    machine_cpu, cpu1, t1 = psutil.cpu_percent(None), proc.cpu_times(), time.time()
    frames = [w.processed - f for w, f in zip(pipeline.workers, frames0, strict=True)]
    dropped = sum(w.source.dropped for w in pipeline.workers) - dropped0
    runs = _inferences(pipeline.workers) - runs0
    latencies = [x for w in pipeline.workers for x in w.latencies(since=t0) if x is not None]
    states = {w.camera: w.source.status().state.value for w in pipeline.workers}
    pipeline.stop()
    window = t1 - t0
    p50, p95, p99 = (round(float(np.percentile(latencies, q)) * 1000, 1) for q in (50, 95, 99))
    own_s = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    own = own_s / window / (psutil.cpu_count() or 1) * 100
    return {
        "cameras": cameras,
        "fps_target": fps,
        "fps_sustained": round(min(frames) / window, 2),
        "dropped_frames": dropped,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "cpu_percent": round(machine_cpu, 1),
        "process_cpu_percent": round(own, 1),
        # CPU time per judged frame: on a shared machine this, not wall-clock figures, says what it costs.
        "cpu_ms_per_frame": round(own_s / max(1, sum(frames)) * 1000, 1),
        "detector": opts.detector + ("-int8" if opts.detector == "onnx" and opts.int8 else ""),
        "scene": video.name,
        "max_crops": opts.max_crops if opts.detector == "onnx" else None,
        "inferences_per_frame": round(runs / max(1, sum(frames)), 2) if opts.detector == "onnx" else None,
        "frame_size": list(SIZE),
        "seconds": round(window, 1),
        "frames": sum(frames),
        "decisions": published[0],
        "records": sink.count,
        "source_states": states,
        "cpus": psutil.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _inferences(workers: Any) -> int:
    return sum(getattr(w.perception.detector, "inferences", 0) for w in workers)


class _CountingSink:
    def __init__(self) -> None:
        self.count = 0

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: Any) -> None:
        self.count += 1


def _detector_section(opts: BenchOptions, cache: Path) -> dict[str, Any]:
    if opts.detector == "motion":
        return {"name": "motion"}
    model = build_bench_model(cache, int8=opts.int8)
    classes = [f"class{k}" for k in range(_BENCH_CLASSES)]
    return {"name": "onnx", "options": {"model": str(model), "classes": classes, "max_crops": opts.max_crops}}


def _camera_config(i: int, video: Path, zones: dict[str, Any], fps: int, det: dict[str, Any]) -> Any:
    from cityedge.edge.camera.config import CameraConfig

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


# --- the clip ----------------------------------------------------------------------------------


def write_bench_video(cache: Path, fps: int, scene: str = "clear_day") -> tuple[Path, dict[str, Any]]:
    """A 1280x720 H.264 clip (made once) and the zones of its lanes.

    The synthetic test bed's scene (a pole camera over four lanes with staged incidents)
    when `cityedge.sim.scene` is there; a plain four-lane fallback otherwise.
    """
    try:
        from cityedge.sim.scenarios import preset
        from cityedge.sim.scene import scene_zones, write_video
    except ImportError:
        return _fallback_video(cache, fps)
    scenario = preset(scene, slots=1, size=SIZE, fps=float(fps))  # 62 s: one slot of incidents
    path = cache / f"{scene}-{SIZE[0]}x{SIZE[1]}-{fps}fps.mp4"
    if not path.exists():
        write_video(scenario, path, size=SIZE, fps=float(fps))
    return path, scene_zones(scenario).model_dump(mode="json")


def _fallback_video(cache: Path, fps: int, seconds: int = 20) -> tuple[Path, dict[str, Any]]:
    path = cache / f"traffic-{SIZE[0]}x{SIZE[1]}-{fps}fps-{seconds}s.mp4"
    if not path.exists():
        tmp = path.with_suffix(".part.mp4")
        _encode(tmp, _traffic_frames(fps, seconds), fps)
        tmp.replace(path)
    return path, _bench_zones()


def _bench_zones() -> dict[str, Any]:
    w, _ = SIZE
    return {
        "frame_size": list(SIZE),
        "lanes": [
            {"name": "eastbound", "polygon": [[0, 380], [w, 380], [w, 560], [0, 560]], "direction": [1, 0]},
            {"name": "westbound", "polygon": [[0, 200], [w, 200], [w, 380], [0, 380]], "direction": [-1, 0]},
        ],
    }


def _traffic_frames(fps: int, seconds: int) -> Any:
    """Vehicles of several sizes and colours on four lanes, with sensor noise (deterministic)."""
    import numpy as np

    w, h = SIZE
    rng = np.random.default_rng(7)
    road = np.full((h, w, 3), (70, 110, 80), np.uint8)  # verges
    road[200:560] = (85, 85, 85)
    road[378:382] = (230, 230, 230)  # centre line
    lanes = [(230, -1, 150.0), (310, -1, 100.0), (410, 1, 120.0), (490, 1, 90.0)]  # (top y, direction, px/s)
    cars: list[dict[str, Any]] = []
    for y, d, speed in lanes:
        # One speed per lane and even spacing: vehicles never drive through each other.
        for k in range(3):
            cars.append(
                {
                    "y": y + int(rng.integers(0, 20)),
                    "d": d,
                    "speed": speed,
                    "x0": k * (w + 200) / 3 + float(rng.uniform(0, 60)),
                    "size": (int(rng.integers(80, 200)), int(rng.integers(40, 60))),
                    "colour": tuple(int(c) for c in rng.integers(20, 240, 3)),
                }
            )
    for i in range(fps * seconds):
        t = i / fps
        img = road.copy()
        for car in cars:
            cw, ch = car["size"]
            x = int((car["x0"] + car["d"] * car["speed"] * t) % (w + 200)) - cw
            img[car["y"] : car["y"] + ch, max(0, x) : max(0, x + cw)] = car["colour"]
        noise = rng.normal(0, 2.0, (h, w, 1)).astype(np.int16)
        yield np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _encode(path: Path, frames: Any, fps: int) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        # A camera-like stream: a keyframe every 2 s, no B-frames (cameras send none).
        stream.options = {"preset": "veryfast", "g": str(2 * fps), "bf": "0", "crf": "26"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


# --- the model ---------------------------------------------------------------------------------


def build_bench_model(cache: Path, size: int = 320, nc: int = _BENCH_CLASSES, *, int8: bool = False) -> Path:
    """A YOLOv8-shaped ONNX graph ([1, 4+nc, 2100] at 320) with random weights and ~1.09 GMACs.

    `int8`: the same graph quantized by ONNX Runtime (static, QDQ, per-channel int8 weights,
    calibrated on random images: with random weights, ranges are all that matter).
    """
    path = cache / f"yolov8n-like-{size}.onnx"
    if not path.exists():
        model, _ = _bench_graph(size, nc)
        import onnx

        tmp = path.with_suffix(".part")
        onnx.save(model, str(tmp))
        tmp.replace(path)
    if not int8:
        return path
    qpath = cache / f"yolov8n-like-{size}-int8-qdq.onnx"
    if not qpath.exists():
        _quantize(path, qpath, size)
    return qpath


def _quantize(src: Path, dst: Path, size: int) -> None:
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Images(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self._it = iter([{"images": rng.random((1, 3, size, size), dtype=np.float32)} for _ in range(4)])

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

    tmp = dst.with_suffix(".part")
    quantize_static(
        str(src),
        str(tmp),
        Images(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    tmp.replace(dst)


def _bench_graph(size: int, nc: int, head: int = 77) -> tuple[Any, int]:
    """Backbone of strided 3x3 convs with residual pairs, YOLOv8-style decoupled heads at
    strides 8/16/32. MACs = sum over convs of Cout*Hout*Wout*Cin*k*k; head width 77 brings
    the total to 1.09e9 at 320x320 (YOLOv8n: 1.09e9)."""
    import numpy as np
    from onnx import TensorProto, checker, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes: list[Any] = []
    inits: list[Any] = []
    macs = 0

    def conv(
        x: str, cin: int, cout: int, k: int, s: int, hw: int, act: bool = True, bias: float = 0.0
    ) -> str:
        nonlocal macs
        name = f"conv{len(nodes)}"
        weight = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))).astype(np.float32)
        inits.extend(
            [
                numpy_helper.from_array(weight, name + "_w"),
                numpy_helper.from_array(np.full(cout, bias, np.float32), name + "_b"),
            ]
        )
        nodes.append(
            helper.make_node(
                "Conv",
                [x, name + "_w", name + "_b"],
                [name],
                kernel_shape=[k, k],
                strides=[s, s],
                pads=[k // 2] * 4,
            )
        )
        macs += cout * (hw // s) ** 2 * cin * k * k
        if not act:
            return name
        nodes.append(helper.make_node("Relu", [name], [name + "_r"]))
        return name + "_r"

    x, hw, c = conv("images", 3, 16, 3, 2, size), size // 2, 16
    feats = []
    for i, cw in enumerate((32, 64, 128, 256)):
        x, hw, c = conv(x, c, cw, 3, 2, hw), hw // 2, cw
        y = conv(conv(x, c, c, 3, 1, hw), c, c, 3, 1, hw)
        nodes.append(helper.make_node("Add", [x, y], [f"res{i}"]))
        x = f"res{i}"
        if hw <= size // 8:
            feats.append((x, c, hw))
    outs = []
    for j, (f, c, hw) in enumerate(feats):
        box = conv(conv(conv(f, c, head, 3, 1, hw), head, head, 3, 1, hw), head, 4, 1, 1, hw, act=False)
        # Class logits biased low: like a trained model on empty road, few candidates pass.
        cls = conv(conv(conv(f, c, head, 3, 1, hw), head, head, 3, 1, hw), head, nc, 1, 1, hw, False, -12.0)
        nodes.append(helper.make_node("Sigmoid", [cls], [f"score{j}"]))
        nodes.append(helper.make_node("Concat", [box, f"score{j}"], [f"head{j}"], axis=1))
        inits.append(numpy_helper.from_array(np.array([1, 4 + nc, -1], np.int64), f"shape{j}"))
        nodes.append(helper.make_node("Reshape", [f"head{j}", f"shape{j}"], [f"out{j}"]))
        outs.append(f"out{j}")
    nodes.append(helper.make_node("Concat", outs, ["output0"], axis=2))
    graph = helper.make_graph(
        nodes,
        "yolov8n_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + nc, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    checker.check_model(model)
    return model, macs
