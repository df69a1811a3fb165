"""How tall vehicles are where they drive, and the stopped-vehicle rule's use of it: a sliver
standing where the cars are three times as tall is not one of them."""

from __future__ import annotations

from cityedge.edge.camera.rules.sizes import KNOWN_AFTER, VehicleSizes
from cityedge.protocol.vision import Box
from tests.support.rule_frames import Vehicle, drives, incidents, run, sized, stops


def test_each_track_counts_once_per_band_and_the_smaller_vehicles_set_the_height() -> None:
    sizes = VehicleSizes((1000, 400))
    for _ in range(50):  # one long-lived tall blob does not outvote the cars
        sizes.drove(1, Box(100, 110, 300, 190))
    assert sizes.typical(190) is None
    for tid in range(2, 2 + KNOWN_AFTER):
        sizes.drove(tid, Box(400, 150, 460, 190))  # cars 40 px tall
    assert sizes.typical(190) == 40
    assert sizes.typical(60) is None  # another band of rows: nobody drove there
    sizes.drove(99, Box(0, 170, 60, 190))  # cut off by the frame's left edge: not its height
    sizes.drove(98, Box(400, 185, 460, 190))  # a 5 px sliver that drove: one does not move it
    assert sizes.typical(190) == 40
    for tid in range(200, 200 + 2 * KNOWN_AFTER):
        sizes.drove(tid, Box(400, 170, 460, 190))  # many smaller vehicles (20 px) do
    assert sizes.typical(190) == 20


def _traffic(count: int) -> list[Vehicle]:
    """`count` cars 120 x 80 px through lane east, one entering every second."""

    def car(k: int) -> Vehicle:
        moving = sized(drives(10 + k, 190, -200.0 * k, 200.0), 120, 80)
        return lambda t: moving(t) if k <= t < k + 5 else None

    return [car(k) for k in range(count)]


def test_a_sliver_a_third_as_tall_as_the_cars_there_is_not_a_stopped_vehicle() -> None:
    # it drove and stood like a car, but at 30 px where the cars are 80 px tall it is the rim
    # of a ghost or the strip a queue left; 45 px tall (over half) it is a small vehicle
    def standing(h: float) -> Vehicle:
        moving = sized(stops(1, 190, -120.0 * 12, 120.0, at=15.0), 60, h)
        return lambda t: moving(t) if t >= 12.0 else None

    assert incidents(run([*_traffic(10), standing(30)], 40)) == []
    assert incidents(run([*_traffic(10), standing(45)], 40)) == [("stopped_vehicle", "east")]
    assert incidents(run([*_traffic(3), standing(30)], 40)) == [("stopped_vehicle", "east")]


def test_a_box_at_the_frames_edge_is_cut_off_and_the_top_edge_counts_when_asked() -> None:
    from cityedge.edge.camera.rules.edges import cut_off

    size = (1000, 400)
    assert not cut_off(Box(100, 100, 200, 150), size)
    assert all(
        cut_off(b, size) for b in (Box(1, 100, 50, 150), Box(950, 100, 999, 150), Box(100, 350, 200, 399))
    )
    assert cut_off(Box(100, 1, 200, 50), size)
    assert not cut_off(Box(100, 1, 200, 50), size, top=False)
    assert not cut_off(Box(1, 1, 999, 399), None)  # unknown frame: nothing is cut off
