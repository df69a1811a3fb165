"""Lane zones: YAML loading with errors that name file and field, foot-point membership."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityedge.edge.camera.zones import CameraZones, Lane, load_zones
from cityedge.protocol.errors import ConfigError

GOOD = """
camera: cam-1
frame_size: [640, 360]
lanes:
  - name: east
    polygon: [[0, 200], [640, 200], [640, 300], [0, 300]]
    direction: [3, 0]
  - name: lot
    polygon: [[0, 0], [640, 0], [640, 200], [0, 200]]
"""


def test_a_valid_file_loads_with_unit_directions_and_optional_direction(tmp_path: Path) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text(GOOD)
    zones = load_zones(path)
    assert zones.camera == "cam-1"
    assert zones.lanes[0].direction == (1.0, 0.0)
    assert zones.lanes[1].direction is None
    assert zones.lanes[1].kind == "road"


def test_the_lane_is_judged_on_the_foot_point(tmp_path: Path) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text(GOOD)
    zones = load_zones(path)
    assert zones.lane_at((320, 250)).name == "east"  # type: ignore[union-attr]
    assert zones.lane_at((320, 100)).name == "lot"  # type: ignore[union-attr]
    assert zones.lane_at((320, 350)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("direction: [3, 0]", "direction: [3, 0]\n    speed: 5"), "lanes.0.speed"),
        (
            GOOD.replace("[[0, 200], [640, 200], [640, 300], [0, 300]]", "[[0, 200], [640, 200]]"),
            "lanes.0.polygon",
        ),
        (GOOD.replace("direction: [3, 0]", "direction: [0, 0]"), "lanes.0.direction"),
        (GOOD.replace("name: lot", "name: east"), "lanes"),
        (GOOD.replace("camera: cam-1\n", ""), "camera"),
    ],
)
def test_a_bad_field_is_named_with_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_zones(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text("camera: cam-1\nlanes: [\n")
    with pytest.raises(ConfigError, match=r"zones.yaml: line \d+"):
        load_zones(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read zones file"):
        load_zones(tmp_path / "nope.yaml")


def test_zones_scale_to_another_frame_size() -> None:
    lane = Lane(name="a", polygon=[(0, 0), (100, 0), (100, 50)], direction=(1, 1))
    zones = CameraZones(camera="c", frame_size=(200, 100), lanes=[lane]).scaled((400, 100))
    assert zones.lanes[0].polygon == [(0, 0), (200, 0), (200, 50)]
    dx, dy = zones.lanes[0].direction  # type: ignore[misc]
    assert dx == pytest.approx(2 / 5**0.5)
    assert dy == pytest.approx(1 / 5**0.5)
    assert zones.lanes[0].area == pytest.approx(5000.0)
