"""`cityedge camera replay`: a video file through a camera's node pipeline, on generated and real clips."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import pytest
import yaml
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.edge.camera.config import load_node_cameras
from cityedge.edge.camera.replay import replay
from cityedge.protocol.errors import ConfigError
from cityedge.sim.scene import Injected, Scenario, SceneRun, scene_zones, write_video
from tests.support.services import require

DATA = Path(__file__).resolve().parents[2] / "data"
FOOTAGE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "car-detection.mp4"
SCENE = Scenario(name="replay", seed=5, seconds=16, incidents=(Injected("wrong_way", "east_1", 3.0),))


def node_yaml(path: Path, scenario: Scenario, **camera: Any) -> Path:
    """A node config whose camera `cam-sim` has the scene's lanes."""
    zones = scene_zones(scenario).model_dump(mode="json")
    section = {"id": scenario.camera, "url": "not-read.mp4", "zones": zones} | camera
    node = {"node_id": "n1", "district": "d1", "data_dir": str(path.parent / "data"), "uplink": {}}
    path.write_text(yaml.safe_dump(node | {"cameras": [section]}))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SceneRun, Path]:
    """16 s of the synthetic road at 640x360 and 10 fps, one wrong-way driver staged at 3 s."""
    root = tmp_path_factory.mktemp("replay")
    video = root / "road.mp4"
    run = write_video(SCENE, video, size=(640, 360), fps=10)
    return video, run, node_yaml(root / "node.yaml", SCENE)


def frames_in(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_generated_clip_replays_through_the_nodes_pipeline_with_the_files_timeline(
    clip: tuple[Path, SceneRun, Path],
) -> None:
    video, run, config = clip
    [camera] = load_node_cameras(config, "cam-sim")
    report = replay(camera, video)
    assert (report.frames, report.processed, report.thinned, report.errors) == (160, 160, 0, 0)
    assert report.frame_size == (640, 360)
    assert report.clip_s == pytest.approx(15.9)
    assert report.frame_ms_p50 is not None and report.frame_ms_p95 is not None
    assert report.frame_ms_p50 <= report.frame_ms_p95 <= report.frame_ms_max  # type: ignore[operator]
    [truth] = run.incidents
    [incident] = report.incidents
    assert (incident.type, incident.lane) == ("wrong_way", truth.lane)
    # the file's timeline: seconds into the clip, not wall time
    assert truth.start - SCENE.start_time <= incident.detected_at <= truth.end - SCENE.start_time
    assert [(d.action, d.lane) for d in report.decisions] == [("alert", "east_1")]
    assert set(report.counts) == {lane.name for lane in scene_zones(SCENE).lanes}
    assert 1 <= report.vehicles <= run.vehicles_spawned
    assert report.warnings == []


def test_json_output_is_the_report(clip: tuple[Path, SceneRun, Path]) -> None:
    video, _, config = clip
    result = CliRunner().invoke(
        app, ["camera", "replay", str(video), "--config", str(config), "--camera", "cam-sim", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["frames"] == 160 and data["camera"] == "cam-sim"
    assert [i["type"] for i in data["incidents"]] == ["wrong_way"]
    assert data["vehicles"] == sum(data["counts"].values())
    assert {"frame_ms_p50", "frame_ms_p95", "decisions", "count_windows"} <= set(data)


def test_the_summary_names_incidents_counts_and_timings(clip: tuple[Path, SceneRun, Path]) -> None:
    video, _, config = clip
    result = CliRunner().invoke(
        app, ["camera", "replay", str(video), "-c", str(config), "--camera", "cam-sim"]
    )
    assert result.exit_code == 0, result.output
    assert "160 frames, 160 judged" in result.output
    assert "p95" in result.output and "wrong_way" in result.output and "east_1" in result.output


def test_annotate_writes_a_decodable_video_with_every_frame(
    clip: tuple[Path, SceneRun, Path], tmp_path: Path
) -> None:
    video, _, config = clip
    [camera] = load_node_cameras(config, "cam-sim")
    out = tmp_path / "annotated.mp4"
    report = replay(camera, video, annotate=out)
    assert report.annotated == str(out)
    assert frames_in(out) == frames_in(video) == 160
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 360)
        first = next(container.decode(stream)).to_ndarray(format="bgr24")
    with av.open(str(video)) as container:
        plain = next(container.decode(video=0)).to_ndarray(format="bgr24")
    assert abs(first.astype(int) - plain.astype(int)).mean() > 3  # lanes are drawn on it
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"]  # no temporary file left


def test_a_camera_slower_than_the_file_thins_frames_as_the_node_does(
    clip: tuple[Path, SceneRun, Path], tmp_path: Path
) -> None:
    video, _, _ = clip
    [camera] = load_node_cameras(node_yaml(tmp_path / "node.yaml", SCENE, fps=5), "cam-sim")
    report = replay(camera, video)
    assert report.frames == 160
    assert (report.processed, report.thinned) == (80, 80)


def test_realtime_paces_frames_at_the_files_rate(tmp_path: Path) -> None:
    short = replace(SCENE, seconds=2.0, incidents=())
    video = tmp_path / "short.mp4"
    write_video(short, video, size=(320, 180), fps=10)
    [camera] = load_node_cameras(
        node_yaml(tmp_path / "node.yaml", replace(short, size=(320, 180))), "cam-sim"
    )
    report = replay(camera, video, realtime=True)
    assert report.wall_s >= 0.9 * report.clip_s  # 1.9 s of clip; full speed takes a fraction of that


def test_zones_drawn_on_another_size_are_scaled_with_a_warning(
    clip: tuple[Path, SceneRun, Path], tmp_path: Path
) -> None:
    video, _, _ = clip
    big = replace(SCENE, size=(1280, 720))
    [camera] = load_node_cameras(node_yaml(tmp_path / "node.yaml", big), "cam-sim")
    report = replay(camera, video)
    assert report.warnings == [
        "camera 'cam-sim': zones were drawn on 1280x720 but the stream is 640x360:"
        " the lanes are scaled by 0.5"
    ]
    assert [i.lane for i in report.incidents] == ["east_1"]


def test_a_missing_video_or_camera_is_a_clear_error(
    clip: tuple[Path, SceneRun, Path], tmp_path: Path
) -> None:
    _, _, config = clip
    [camera] = load_node_cameras(config, "cam-sim")
    with pytest.raises(ConfigError, match=r"video .*nope\.mp4: no such file"):
        replay(camera, tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(ConfigError, match=r"junk\.mp4: cannot be read"):
        replay(camera, junk)
    with pytest.raises(ConfigError, match=r"node n1 has no camera 'cam-2'; its cameras: \['cam-sim'\]"):
        load_node_cameras(config, "cam-2")


@pytest.fixture
def footage() -> Path:
    # a fixture, so that missing footage fails (CI) or skips the test rather than "xfail" it
    require(FOOTAGE.is_file(), f"real footage {FOOTAGE} (see shared/data/README.md)")
    return FOOTAGE


def test_the_parking_lot_clip_counts_four_vehicles_and_raises_no_incident(footage: Path) -> None:
    [camera] = load_node_cameras(DATA / "parking-lot-node.yaml", "lot")
    report = replay(camera, footage)
    assert report.frames == 377
    assert report.incidents == []
    assert abs(report.vehicles - 4) <= 1
    # at its count line: the first and the red car drive up the picture, the others down
    by_direction = {c.direction: c.count for c in report.count_windows if c.line == "middle"}
    assert by_direction == {"forward": 2, "backward": 2}
