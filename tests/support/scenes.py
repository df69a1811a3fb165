"""Synthetic road clips the camera tests share."""

from __future__ import annotations

from cityedge.sim.scene import Injected, Scenario


def stopped_vehicle_road(name: str, seconds: float) -> Scenario:
    """A small, quiet road (480x270) where one vehicle stops in lane east_1 after 1 s: an
    incident and a local decision."""
    return Scenario(
        name=name,
        seed=5,
        seconds=seconds,
        size=(480, 270),
        arrivals_per_lane_s=0.05,
        incidents=(Injected("stopped_vehicle", "east_1", 1.0, duration=30.0),),
        camera="cam-1",
    )
