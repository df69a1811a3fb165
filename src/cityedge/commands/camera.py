"""`cityedge bench camera`: parse the options, run `cityedge.bench.camera`, print its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["register"]

_DEFAULT_CACHE = Path.home() / ".cache" / "cityedge" / "bench-camera"


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
    processes: str = typer.Option(
        "auto", "--processes", help="Camera worker processes: auto | 0 (all in one process) | N."
    ),
    per_process: int = typer.Option(8, "--cameras-per-process", min=1, help="auto: cameras per process."),
    cache_dir: Path = typer.Option(_DEFAULT_CACHE, "--cache-dir", help="Where the clip and model are kept."),
) -> None:
    """Run N cameras in real time through sources, perception, rules and decisions; print figures."""
    from cityedge.bench.camera import BenchOptions, bench_camera, parse_processes

    workers = parse_processes(processes)
    opts = BenchOptions(cameras, fps, seconds, detector, warmup, scene, int8, max_crops, workers, per_process)
    result = bench_camera(opts, cache_dir)
    typer.echo(json.dumps(result, indent=None if json_out else 2))
