"""The Norfair-backed tracker: stable ids, foot velocity in px/s, frame gaps as Kalman steps."""

from __future__ import annotations

import pytest

from cityedge.edge.camera.tracker import Tracker, TrackerConfig
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.vision import Box, Detection

T0 = 1_767_225_600.0


def det(x: float, y: float, w: float = 60, h: float = 30) -> Detection:
    return Detection(Box(x, y, x + w, y + h), 0.9)


def test_a_vehicle_moving_steadily_keeps_one_id_and_its_foot_speed_in_px_per_s() -> None:
    tracker = Tracker(TrackerConfig(fps=10))
    ids, last = set(), []
    for k in range(40):
        last = tracker.update([det(100 + 12 * k, 200 + 2 * k)], T0 + k / 10)
        ids |= {t.track_id for t in last}
    assert len(ids) == 1
    (state,) = last
    assert state.velocity[0] == pytest.approx(120.0, rel=0.05)  # 12 px/frame at 10 fps
    assert state.velocity[1] == pytest.approx(20.0, rel=0.1)
    assert 35 <= state.hits <= 40  # reported once confirmed, then every matched frame
    assert state.first_seen <= T0 + 0.3
    assert state.label == "vehicle"


def test_two_vehicles_in_opposite_directions_keep_their_ids_when_they_pass() -> None:
    tracker = Tracker()
    by_id: dict[int, list[float]] = {}
    for k in range(50):
        tracks = tracker.update([det(50 + 10 * k, 100), det(600 - 10 * k, 160)], T0 + k / 10)
        for t in tracks:
            by_id.setdefault(t.track_id, []).append(t.velocity[0])
    assert len(by_id) == 2
    signs = sorted(round(v[-1] / abs(v[-1])) for v in by_id.values())
    assert signs == [-1, 1]


def test_a_track_coasts_through_a_short_occlusion() -> None:
    tracker = Tracker()
    ids = set()
    for k in range(30):
        seen = [] if 12 <= k < 15 else [det(100 + 10 * k, 200)]
        ids |= {t.track_id for t in tracker.update(seen, T0 + k / 10)}
    assert len(ids) == 1


def test_skipped_frames_are_kalman_steps_so_speed_stays_per_second() -> None:
    tracker = Tracker(TrackerConfig(fps=10))
    last = []
    for k in range(0, 60, 2):  # the pipeline dropped every other frame
        last = tracker.update([det(100 + 10 * k, 200)], T0 + k / 10)
    assert last[0].velocity[0] == pytest.approx(100.0, rel=0.1)


def test_frames_out_of_order_are_refused() -> None:
    tracker = Tracker()
    tracker.update([det(0, 0)], T0 + 1)
    with pytest.raises(ConfigError, match="out of order"):
        tracker.update([det(0, 0)], T0)
