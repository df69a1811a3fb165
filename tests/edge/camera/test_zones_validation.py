"""Zone validation: each refusal names the camera, the lane and the problem; size mismatches are said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cityedge.edge.camera.config import load_node_cameras
from cityedge.edge.camera.zones import CameraZones, frame_size_note, load_zones, parse_zones
from cityedge.protocol.errors import ConfigError

EAST = {"name": "east", "polygon": [[0, 200], [640, 200], [640, 300], [0, 300]], "direction": [1, 0]}
WEST = {"name": "west", "polygon": [[0, 100], [640, 100], [640, 200], [0, 200]], "direction": [-1, 0]}


def zones(*lanes: dict[str, Any], frame_size: tuple[int, int] = (640, 360)) -> dict[str, Any]:
    return {"camera": "cam-7", "frame_size": list(frame_size), "lanes": list(lanes)}


def refusal(data: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "zones.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_zones(path)
    message = str(err.value)
    assert str(path) in message and "cam-7" in message
    return message


def test_lanes_that_meet_edge_to_edge_both_ways_are_accepted() -> None:
    accepted = parse_zones(zones(EAST, WEST), "test")
    assert [lane.name for lane in accepted.lanes] == ["east", "west"]


def test_an_empty_lane_list_is_refused(tmp_path: Path) -> None:
    assert "no lanes: draw at least one" in refusal(zones(), tmp_path)


def test_a_polygon_outside_the_frame_is_refused(tmp_path: Path) -> None:
    lane = EAST | {"polygon": [[0, 200], [700, 200], [640, 300], [0, 300]]}
    message = refusal(zones(lane), tmp_path)
    assert "lane 'east': point (700, 200) lies outside the 640x360 frame" in message


def test_a_negative_coordinate_is_outside_too(tmp_path: Path) -> None:
    lane = EAST | {"polygon": [[0, -20], [640, 200], [640, 300], [0, 300]]}
    assert "lane 'east': point (0, -20) lies outside the 640x360 frame" in refusal(zones(lane), tmp_path)


def test_a_self_crossing_polygon_is_refused_with_where_it_crosses(tmp_path: Path) -> None:
    bow_tie = EAST | {"polygon": [[0, 200], [640, 300], [640, 200], [0, 300]]}  # two corners swapped
    message = refusal(zones(bow_tie), tmp_path)
    assert "lane 'east': the polygon crosses itself near [320 250]" in message


def test_a_zero_area_polygon_is_refused(tmp_path: Path) -> None:
    flat = EAST | {"polygon": [[0, 200], [320, 200], [640, 200]]}
    assert "lane 'east': the polygon has zero area" in refusal(zones(flat), tmp_path)


def test_overlapping_lanes_running_opposite_ways_are_refused(tmp_path: Path) -> None:
    west = WEST | {"polygon": [[0, 150], [640, 150], [640, 250], [0, 250]]}  # half inside "east"
    message = refusal(zones(EAST, west), tmp_path)
    assert (
        "lanes 'east' and 'west': overlap by 32000 px^2 (50% of the smaller) and run opposite ways" in message
    )


def test_overlapping_lanes_going_the_same_way_or_any_way_are_accepted() -> None:
    same = WEST | {"polygon": [[0, 150], [640, 150], [640, 250], [0, 250]], "direction": [1, 0.1]}
    anyway = WEST | {"polygon": [[0, 150], [640, 150], [640, 250], [0, 250]], "direction": None}
    assert len(parse_zones(zones(EAST, same), "test").lanes) == 2
    assert len(parse_zones(zones(EAST, anyway), "test").lanes) == 2


def test_a_lane_with_too_few_points_or_no_direction_is_named(tmp_path: Path) -> None:
    assert "lane 'east': a lane polygon needs at least 3 points" in refusal(
        zones(EAST | {"polygon": [[0, 0], [1, 1]]}), tmp_path
    )
    assert "lane 'east': direction must be a non-zero vector" in refusal(
        zones(EAST | {"direction": [0, 0]}), tmp_path
    )


def test_a_node_config_refusal_names_the_node_file_camera_and_lane(tmp_path: Path) -> None:
    bow_tie = EAST | {"polygon": [[0, 200], [640, 300], [640, 200], [0, 300]]}
    node = {"node_id": "n1", "district": "d1", "data_dir": str(tmp_path), "uplink": {}}
    node["cameras"] = [{"id": "cam-7", "url": "x.mp4", "zones": zones(bow_tie)}]
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(node))
    with pytest.raises(
        ConfigError, match=r"node\.yaml: camera cam-7: zones: .*lane 'east': the polygon crosses itself"
    ):
        load_node_cameras(path)


def test_a_frame_size_that_differs_from_the_stream_is_said() -> None:
    drawn = CameraZones.model_validate(zones(EAST))
    assert frame_size_note(drawn, (640, 360)) is None
    scaled = frame_size_note(drawn, (1280, 720))
    assert scaled == (
        False,
        "camera 'cam-7': zones were drawn on 640x360 but the stream is 1280x720: the lanes are scaled by 2",
    )
    stretched = frame_size_note(drawn, (640, 480))
    assert stretched is not None and stretched[0] is True
    assert "another aspect ratio" in stretched[1] and "640x480" in stretched[1]
