"""Zone set-up tools: snapshots from files and URLs, zones checked against the stream, preview pictures."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.edge.camera.overlay import lane_colour
from cityedge.edge.camera.sources import SourceConfig
from cityedge.edge.camera.zones import CameraZones
from cityedge.edge.camera.zonetools import check_node, count_lines, preview, snapshot
from cityedge.protocol.errors import ConfigError
from cityedge.sim.scene import Scenario, scene_zones, write_video

SCENE = Scenario(name="tools", seed=9, seconds=3.0, size=(320, 180))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    video = tmp_path_factory.mktemp("zonetools") / "road.mp4"
    write_video(SCENE, video, size=(320, 180), fps=10)
    return video


def node_yaml(path: Path, url: str, scenario: Scenario = SCENE, **camera: Any) -> Path:
    zones = scene_zones(scenario).model_dump(mode="json")
    section = {"id": scenario.camera, "url": url, "zones": zones} | camera
    node = {"node_id": "n1", "district": "d1", "data_dir": str(path.parent / "data"), "uplink": {}}
    path.write_text(yaml.safe_dump(node | {"cameras": [section]}))
    return path


def frame_at(video: Path, index: int) -> np.ndarray:
    with av.open(str(video)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k == index:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"no frame {index}")


def test_a_snapshot_of_a_file_is_the_frame_at_the_time_asked(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "snap.png"
    assert snapshot(SourceConfig(url=str(clip)), out, at_s=1.5) == (320, 180)
    image = cv2.imread(str(out))
    assert image.shape == (180, 320, 3)
    assert np.array_equal(image, frame_at(clip, 15))  # PNG is lossless: exactly the decoded frame
    assert not np.array_equal(image, frame_at(clip, 0))


@pytest.fixture
def http_camera(clip: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_snapshot_of_a_url_through_the_cli_writes_a_png(http_camera: str, tmp_path: Path) -> None:
    out = tmp_path / "url.png"
    result = CliRunner().invoke(app, ["camera", "snapshot", "--url", http_camera, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "320x180" in result.output
    assert cv2.imread(str(out)).shape == (180, 320, 3)


def test_a_snapshot_of_a_nodes_camera_is_decoded_at_the_cameras_size(clip: Path, tmp_path: Path) -> None:
    config = node_yaml(tmp_path / "node.yaml", str(clip), size=[160, 90])
    out = tmp_path / "small.png"
    result = CliRunner().invoke(
        app, ["camera", "snapshot", "-c", str(config), "--camera", "cam-sim", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(out)).shape == (90, 160, 3)


def test_a_source_that_cannot_be_read_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "none.png"
    with pytest.raises(ConfigError, match=r"source .*missing\.mp4: no such file"):
        snapshot(SourceConfig(url=str(tmp_path / "missing.mp4")), out)
    with pytest.raises(ConfigError, match=r"source usb:97: "):
        snapshot(SourceConfig(url="usb:97", open_timeout_s=1), out)
    assert list(tmp_path.iterdir()) == []


def test_a_snapshot_needs_one_source(clip: Path, tmp_path: Path) -> None:
    config = node_yaml(tmp_path / "node.yaml", str(clip))
    for args in (["--camera", "cam-sim"], ["--url", str(clip), "-c", str(config), "--camera", "cam-sim"]):
        result = CliRunner().invoke(app, ["camera", "snapshot", "-o", str(tmp_path / "x.png"), *args])
        assert result.exit_code != 0
        assert "say which source: --url URL, or --config NODE.yaml and --camera ID" in str(result.exception)
    assert not (tmp_path / "x.png").exists()


def test_zones_check_reads_the_stream_and_passes_matching_zones(clip: Path, tmp_path: Path) -> None:
    [check] = check_node(node_yaml(tmp_path / "node.yaml", str(clip)))
    assert (check.camera, check.ok, check.lanes) == ("cam-sim", True, 4)
    assert check.frame_size == check.stream_size == (320, 180)
    assert check.problems == check.warnings == []


def test_zones_drawn_on_another_size_are_a_warning_and_another_shape_a_refusal(
    clip: Path, tmp_path: Path
) -> None:
    [scaled] = check_node(node_yaml(tmp_path / "a.yaml", str(clip), replace(SCENE, size=(640, 360))))
    assert scaled.ok and scaled.stream_size == (320, 180)
    assert scaled.warnings == [
        "camera 'cam-sim': zones were drawn on 640x360 but the stream is 320x180: the lanes are scaled by 0.5"
    ]
    [stretched] = check_node(node_yaml(tmp_path / "b.yaml", str(clip), replace(SCENE, size=(320, 240))))
    assert not stretched.ok
    assert "drawn on 320x240 but the stream is 320x180" in stretched.problems[0]


def test_zones_check_refuses_bad_zones_and_exits_1(clip: Path, tmp_path: Path) -> None:
    config = node_yaml(tmp_path / "node.yaml", str(clip))
    data = yaml.safe_load(config.read_text())
    data["cameras"][0]["zones"]["lanes"][0]["polygon"][1] = [400, 90]  # off the 320 px frame
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["camera", "zones", "check", "-c", str(config), "--json"])
    assert result.exit_code == 1, result.output
    [row] = [json.loads(line) for line in result.output.splitlines()]
    assert row["verdict"] == "refused"
    assert "lane 'west_2': point (400, 90) lies outside the 320x180 frame" in row["problems"][0]


def test_zones_check_without_probing_says_it_did_not_compare(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "camera",
            "zones",
            "check",
            "-c",
            str(node_yaml(tmp_path / "n.yaml", "rtsp://10.9.9.9/x")),
            "--no-probe",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["warnings"] == ["frame_size not compared with the stream (not probed)"]


def test_a_preview_fills_and_outlines_each_lane_on_a_grid(tmp_path: Path) -> None:
    zones = scene_zones(SCENE)
    out = tmp_path / "preview.png"
    preview(zones, out)
    image = cv2.imread(str(out))
    assert image.shape == (180, 320, 3)
    lane = zones.lanes[2]  # east_1: its fill is tinted with its colour over the grey canvas
    x, y = (int(v) for v in lane.shape.representative_point().coords[0])
    inside = image[y + 12, x + 40].astype(int)  # clear of the label and arrow
    assert np.abs(inside - 64).max() > 10
    assert np.argmax(inside) == int(np.argmax(lane_colour(2)))
    assert (np.abs(image.astype(int) - 64).sum(axis=2) > 100).any()  # grid and labels are drawn


def test_count_lines_of_the_zones_are_drawn_with_their_forward_side(tmp_path: Path) -> None:
    base = scene_zones(SCENE).model_dump()
    zones = CameraZones.model_validate(
        base | {"count_lines": [{"name": "gate", "points": [[160, 0], [160, 180]]}]}
    )
    assert count_lines(zones) == [("gate", ((160.0, 0.0), (160.0, 180.0)))]
    with_lines, without = tmp_path / "with.png", tmp_path / "without.png"
    preview(zones, with_lines)
    preview(scene_zones(SCENE), without)
    diff = np.abs(cv2.imread(str(with_lines)).astype(int) - cv2.imread(str(without)).astype(int)).sum(axis=2)
    _, xs = np.nonzero(diff)
    assert (abs(xs - 160) <= 3).mean() > 0.3  # a vertical line at x = 160 ...
    # ... whose forward side (right-hand, walking down the picture) is left: the arrow is drawn there
    assert diff[85:95, 125:155].sum() > diff[85:95, 165:195].sum()


def test_preview_through_the_cli_on_a_frame_of_the_source(clip: Path, tmp_path: Path) -> None:
    config = node_yaml(tmp_path / "node.yaml", str(clip))
    out = tmp_path / "p.png"
    args = [
        "camera",
        "zones",
        "preview",
        "-c",
        str(config),
        "--camera",
        "cam-sim",
        "-o",
        str(out),
        "--from-source",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    on_frame = cv2.imread(str(out))
    preview(scene_zones(SCENE), tmp_path / "grey.png")
    assert on_frame.shape == (180, 320, 3)
    assert not np.array_equal(on_frame, cv2.imread(str(tmp_path / "grey.png")))


def test_the_docs_example_passes_the_check_and_previews_as_pictured(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[3] / "docs"
    [check] = check_node(docs / "examples" / "zones-node.yaml", probe=False)
    assert (check.camera, check.ok, check.lanes, check.problems) == ("cam-1", True, 4, [])
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(
        app,
        [
            "camera",
            "zones",
            "preview",
            "-c",
            str(docs / "examples" / "zones-node.yaml"),
            "--camera",
            "cam-1",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(docs / "img" / "zones-grid.png")))
