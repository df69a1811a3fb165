"""Count lines: crossing geometry, and the zones refusing lines the rules could not use."""

from __future__ import annotations

import pytest

from cityedge.edge.camera.countline import CountLine
from cityedge.edge.camera.zones import CameraZones, Lane, parse_zones
from cityedge.protocol.errors import ConfigError

LINE = CountLine(name="gate", points=((100, 100), (300, 100)))  # drawn left to right


@pytest.mark.parametrize(
    ("a", "b", "crossing"),
    [
        ((200, 90), (200, 110), "forward"),  # down the picture: to the right walking left to right
        ((200, 110), (200, 90), "backward"),
        ((200, 90), (200, 99), None),  # not there yet
        ((50, 90), (50, 110), None),  # past the line's end
        ((90, 90), (110, 110), "forward"),  # a diagonal step across its first point's side
        ((200, 100), (200, 120), "forward"),  # from on the line
    ],
)
def test_a_step_crosses_a_line_in_a_direction_or_not(
    a: tuple[float, float], b: tuple[float, float], crossing: str | None
) -> None:
    assert LINE.crossed(a, b) == crossing


def _zones(**line: object) -> dict[str, object]:
    return {
        "camera": "c",
        "frame_size": [400, 200],
        "lanes": [
            {"name": "east", "polygon": [[0, 50], [400, 50], [400, 150], [0, 150]], "direction": [1, 0]}
        ],
        "count_lines": [{"name": "gate", "points": [[200, 40], [200, 160]], **line}],
    }


def test_a_count_line_with_no_length_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="count line 'gate': its two points are the same"):
        parse_zones(_zones(points=[[200, 40], [200, 40]]), "zones.yaml")


def test_a_count_line_outside_the_frame_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"count line 'gate': point \(200, 260\) lies outside the 400x200 frame"
    ):
        parse_zones(_zones(points=[[200, 40], [200, 260]]), "zones.yaml")


def test_a_count_line_for_a_lane_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ConfigError, match="count line 'gate': no lane 'west' to count for"):
        parse_zones(_zones(lane="west"), "zones.yaml")


def test_count_lines_scale_with_the_zones() -> None:
    zones = parse_zones(_zones(lane="east"), "zones.yaml").scaled((800, 400))
    assert zones.count_lines[0].points == ((400, 80), (400, 320))
    assert zones.count_lines[0].lane == "east"


def test_zones_without_count_lines_still_load() -> None:
    zones = CameraZones(
        camera="c", frame_size=(400, 200), lanes=[Lane(name="a", polygon=[(0, 0), (10, 0), (0, 10)])]
    )
    assert zones.count_lines == []
