"""Setting up a camera's zones: a snapshot of its source, checks of its zones against the
stream, and a preview PNG (pixel grid, lanes filled and labelled, directions, count lines).

Sources are opened as the node opens them (`sources.grab_frame`), so a snapshot shows the
frame, at the size, that the zones are judged on. PNGs are written whole or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from cityedge.edge.camera.config import CameraConfig, load_node_cameras, node_camera_sections, parse_camera
from cityedge.edge.camera.overlay import draw_grid, draw_lines, draw_zones
from cityedge.edge.camera.sources import SourceConfig, grab_frame
from cityedge.edge.camera.zones import CameraZones, frame_size_note
from cityedge.protocol.errors import ConfigError

__all__ = [
    "ZoneCheck",
    "check_node",
    "count_lines",
    "preview",
    "preview_camera",
    "snapshot",
    "snapshot_of",
    "source_of",
    "write_png",
]

_CANVAS_GREY = 64


@dataclass(frozen=True)
class ZoneCheck:
    """One camera's verdict: `problems` make it fail, `warnings` do not."""

    camera: str
    ok: bool
    lanes: int = 0
    frame_size: tuple[int, int] | None = None  # what the zones were drawn on
    stream_size: tuple[int, int] | None = None  # what the pipeline will judge (None: not known)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def source_of(camera: CameraConfig) -> SourceConfig:
    """How the node reads the camera (its URL, decode size and timeouts)."""
    return SourceConfig(url=camera.url, size=camera.size, stall_timeout_s=camera.stall_timeout_s)


def write_png(image: NDArray[np.uint8], out: Path) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ConfigError(f"{out}: the image could not be encoded as PNG")
    tmp = out.with_name(f".{out.name}.part")
    try:
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{out}: cannot write the PNG: {exc.strerror}") from None


def snapshot(source: SourceConfig, out: Path, at_s: float = 0.0) -> tuple[int, int]:
    """Write one frame of `source` (files: at `at_s` seconds) to `out` as PNG; its (w, h)."""
    image = grab_frame(source, at_s)
    write_png(image, out)
    return (int(image.shape[1]), int(image.shape[0]))


def snapshot_of(
    out: Path,
    *,
    config: Path | None = None,
    camera: str | None = None,
    url: str | None = None,
    at_s: float = 0.0,
) -> tuple[int, int]:
    """`snapshot` of a URL, or of a node's camera as the node reads it (its decode size)."""
    if url is not None and (config is not None or camera is not None):
        raise ConfigError("say which source: --url URL, or --config NODE.yaml and --camera ID, not both")
    if url is not None:
        return snapshot(SourceConfig(url=url), out, at_s)
    if config is None or camera is None:
        raise ConfigError("say which source: --url URL, or --config NODE.yaml and --camera ID")
    [cam] = load_node_cameras(config, camera)
    return snapshot(source_of(cam), out, at_s)


def check_node(path: Path, camera: str | None = None, *, probe: bool = True) -> list[ZoneCheck]:
    """Check the zones of the node's cameras (or one): validation, then, with `probe`, the
    frame size they were drawn on against the stream's (read from the camera's source)."""
    return [_check(section, str(path), probe) for section in node_camera_sections(path, camera)]


def _check(section: dict[str, Any], source: str, probe: bool) -> ZoneCheck:
    try:
        camera = parse_camera(section, source)
    except ConfigError as exc:
        return ZoneCheck(str(section.get("id", "?")), False, problems=[str(exc)])
    drawn = (int(camera.zones.frame_size[0]), int(camera.zones.frame_size[1]))
    stream, warnings = _stream_size(camera, probe)
    problems: list[str] = []
    note = frame_size_note(camera.zones, stream) if stream is not None else None
    if note is not None:
        (problems if note[0] else warnings).append(note[1])
    return ZoneCheck(camera.id, not problems, len(camera.zones.lanes), drawn, stream, problems, warnings)


def _stream_size(camera: CameraConfig, probe: bool) -> tuple[tuple[int, int] | None, list[str]]:
    if camera.size is not None:
        return (int(camera.size[0]), int(camera.size[1])), []  # the decoder scales to it
    if not probe:
        return None, ["frame_size not compared with the stream (not probed)"]
    try:
        image = grab_frame(source_of(camera))
    except ConfigError as exc:
        return None, [f"frame_size not compared with the stream, which could not be read: {exc}"]
    return (int(image.shape[1]), int(image.shape[0])), []


def count_lines(zones: CameraZones) -> list[tuple[str, Sequence[tuple[float, float]]]]:
    """The zones' count lines as (label, points): the line's name, and its lane if it has one."""
    return [(line.name + (f" ({line.lane})" if line.lane else ""), line.points) for line in zones.count_lines]


def preview(zones: CameraZones, out: Path, background: NDArray[np.uint8] | None = None) -> None:
    """A PNG of the zones on `background` (scaled to `frame_size`) or on a grey canvas: a
    pixel grid with coordinates, each lane filled and labelled, its direction, count lines."""
    w, h = (int(v) for v in zones.frame_size)
    if background is None:
        canvas = np.full((h, w, 3), _CANVAS_GREY, np.uint8)
    elif background.shape[:2] != (h, w):
        canvas = np.asarray(cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA), np.uint8)
    else:
        canvas = background.copy()
    draw_grid(canvas)
    draw_zones(canvas, zones, fill=0.35)
    draw_lines(canvas, count_lines(zones))
    write_png(canvas, out)


def preview_camera(
    config: Path, camera: str, out: Path, *, background: Path | None = None, from_source: bool = False
) -> tuple[int, int]:
    """`preview` of a node's camera, on an image file, on a frame of its source, or on grey."""
    [cam] = load_node_cameras(config, camera)
    image = None
    if background is not None:
        image = cv2.imread(str(background), cv2.IMREAD_COLOR)
        if image is None:
            raise ConfigError(f"--background {background}: not an image OpenCV can read")
    elif from_source:
        image = grab_frame(source_of(cam))
    preview(cam.zones, out, None if image is None else np.asarray(image, np.uint8))
    return (int(cam.zones.frame_size[0]), int(cam.zones.frame_size[1]))
