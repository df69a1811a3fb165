"""`cityedge camera ...`: tools for setting up a camera: replay a video through its pipeline,
take a snapshot, check and preview its zones (docs/zones.md)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cityedge.commands._output import print_rows

if TYPE_CHECKING:
    from cityedge.edge.camera.replay import ReplayReport
    from cityedge.edge.camera.zonetools import ZoneCheck

__all__ = ["camera_app", "register"]

camera_app = typer.Typer(
    help="Camera set-up tools: replay a video through a camera's pipeline, snapshots, zones.",
    no_args_is_help=True,
)
NODE_CONFIG = typer.Option(..., "--config", "-c", help="The node's config YAML (its `cameras` list).")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(camera_app, name="camera")


@camera_app.command("replay")
def replay_command(
    video: Path = typer.Argument(..., help="A video file (any container and codec FFmpeg reads)."),
    config: Path = NODE_CONFIG,
    camera: str = typer.Option(..., "--camera", help="The camera whose pipeline runs (its url is not read)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    annotate: Path | None = typer.Option(
        None, "--annotate", help="Also write the video with lanes, boxes, track ids and incidents drawn."
    ),
    realtime: bool = typer.Option(
        False, "--realtime", help="Pace frames at the file's rate (default: full speed)."
    ),
) -> None:
    """Run a video file through a camera's node pipeline; print incidents, counts and timings."""
    from cityedge.commands._shared import echo_json
    from cityedge.edge.camera.config import load_node_cameras
    from cityedge.edge.camera.replay import replay

    [cam] = load_node_cameras(config, camera)
    report = replay(cam, video, realtime=realtime, annotate=annotate)
    if as_json:
        echo_json(report.to_json())
    else:
        _print_replay(report)


def _print_replay(report: ReplayReport) -> None:
    typer.echo(
        f"camera {report.camera}: {report.video}, {report.frame_size[0]}x{report.frame_size[1]}, "
        f"{report.clip_s:.1f} s: {report.frames} frames, {report.processed} judged, "
        f"{report.thinned} thinned, {report.errors} failed, in {report.wall_s:.1f} s"
    )
    typer.echo(
        f"per judged frame: p50 {report.frame_ms_p50} ms, p95 {report.frame_ms_p95} ms, "
        f"max {report.frame_ms_max} ms (decode p50 {report.decode_ms_p50} ms)"
    )
    typer.echo(f"{report.vehicles} vehicles counted, {report.tracks} tracks confirmed")
    rows = [{"counted at": key, "vehicles": n} for key, n in report.counts.items()]
    print_rows("counts", ["counted at", "vehicles"], rows, as_json=False)
    incidents = [
        {"at (s)": round(i.detected_at, 2), "type": i.type, "lane": i.lane, "track": i.track_id}
        for i in report.incidents
    ]
    print_rows("incidents", ["at (s)", "type", "lane", "track"], incidents, as_json=False)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")
    if report.annotated:
        typer.echo(f"annotated video: {report.annotated}")


@camera_app.command("snapshot")
def snapshot_command(
    out: Path = typer.Option(..., "--out", "-o", help="The PNG to write."),
    config: Path | None = typer.Option(None, "--config", "-c", help="The node's config YAML."),
    camera: str | None = typer.Option(
        None, "--camera", help="A camera of that config (read as the node reads it)."
    ),
    url: str | None = typer.Option(
        None, "--url", help="Or any source: a file, rtsp://, http(s)://, usb:N, /dev/videoN."
    ),
    at: float = typer.Option(0.0, "--at", min=0.0, help="Files: the frame at this many seconds."),
) -> None:
    """Write one frame of a camera's source as PNG: draw the zones on it (docs/zones.md)."""
    from cityedge.edge.camera.zonetools import snapshot_of

    w, h = snapshot_of(out, config=config, camera=camera, url=url, at_s=at)
    typer.echo(f"{out}: {w}x{h} (zones' frame_size: [{w}, {h}]; x right, y down, origin top-left)")


zones_app = typer.Typer(help="Check a camera's zones and preview them as a picture.", no_args_is_help=True)
camera_app.add_typer(zones_app, name="zones")


@zones_app.command("check")
def zones_check(
    config: Path = NODE_CONFIG,
    camera: str | None = typer.Option(None, "--camera", help="Only this camera (default: every camera)."),
    probe: bool = typer.Option(
        True, "--probe/--no-probe", help="Read each stream to compare its frame size."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per camera."),
) -> None:
    """Validate the zones of a node's cameras; exit 1 when any camera's zones are refused."""
    from cityedge.edge.camera.zonetools import check_node

    checks = check_node(config, camera, probe=probe)
    columns = ["camera", "verdict", "lanes", "frame_size", "stream_size", "notes"]
    print_rows(f"zones in {config}", columns, [_check_row(c, as_json) for c in checks], as_json=as_json)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def _check_row(check: ZoneCheck, as_json: bool) -> dict[str, Any]:
    row = asdict(check) | {"verdict": "ok" if check.ok else "refused"}
    if not as_json:
        for key in ("frame_size", "stream_size"):
            row[key] = "x".join(str(v) for v in row[key]) if row[key] else "?"
        row["notes"] = "; ".join(check.problems + check.warnings)
    return row


@zones_app.command("preview")
def zones_preview(
    config: Path = NODE_CONFIG,
    camera: str = typer.Option(..., "--camera", help="The camera whose zones are drawn."),
    out: Path = typer.Option(..., "--out", "-o", help="The PNG to write."),
    background: Path | None = typer.Option(
        None, "--background", help="Draw on this image (e.g. a snapshot)."
    ),
    from_source: bool = typer.Option(
        False, "--from-source", help="Draw on a frame read from the camera's source."
    ),
) -> None:
    """Draw a camera's zones as PNG: pixel grid, lanes filled and labelled, directions, count lines."""
    from cityedge.edge.camera.zonetools import preview_camera

    w, h = preview_camera(config, camera, out, background=background, from_source=from_source)
    typer.echo(f"{out}: zones of {camera} on {w}x{h}")
