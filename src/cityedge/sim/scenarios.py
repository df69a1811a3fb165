"""Deterministic scenario presets for the camera test bed: clear_day, dusk_noise, heavy_traffic,
ghosts and far_320.

Each preset stages incidents on a fixed timetable: every slot puts a congestion episode and
a stopped vehicle on two non-adjacent lanes, then a wrong-way vehicle once the queue has
cleared; the other lanes carry normal traffic, so false alarms have room to show. `ghosts`
adds vehicles standing in lanes when the camera starts (one leaves at once, one parked car
drives off later) and auto-exposure jumps; `far_320` is a 320 px stream whose wrong-way
drivers use the far lanes, where vehicles are smallest. A `seed_offset` gives the same
presets on other seeds (seeds the rules were never tuned on).
"""

from __future__ import annotations

from dataclasses import replace

from cityedge.protocol.errors import ConfigError
from cityedge.sim.scene import Injected, Scenario

__all__ = ["PRESETS", "SLOT_S", "preset", "suite"]

SLOT_S = 55.0
LEAD_S = 12.0
# lanes from the far side to the near side; a queue in a lane hides the lane behind it, so a
# stopped vehicle never shares a slot with congestion in an adjacent lane
_LANES = ("west_2", "west_1", "east_1", "east_2")
_PAIRS = ((0, 2), (1, 3), (2, 0), (3, 1), (0, 3), (3, 0))  # (congestion, stopped), never adjacent


def _timetable(slots: int, far_wrong_way: bool = False) -> tuple[Injected, ...]:
    staged = []
    for k in range(slots):
        start = LEAD_S + k * SLOT_S
        jam, stop = _PAIRS[k % len(_PAIRS)]
        staged.append(Injected("congestion", _LANES[jam], start, duration=28.0))
        staged.append(Injected("stopped_vehicle", _LANES[stop], start + 2.0, duration=20.0))
        # after the queue has cleared, so the wrong-way car meets free-flowing traffic
        # far lanes: the one the queue is not clearing from
        lane = (k + 1) % 4 if not far_wrong_way else (1 if jam == 0 else 0)
        staged.append(Injected("wrong_way", _LANES[lane], start + 44.0))
    return tuple(staged)


def _seconds(slots: int) -> float:
    return LEAD_S + slots * SLOT_S + 5.0


def preset(
    name: str, slots: int = 7, size: tuple[int, int] = (640, 360), fps: float = 10.0, seed_offset: int = 0
) -> Scenario:
    """One preset with `slots` incident slots (three incidents each); `far_320` keeps its size."""
    if name not in PRESETS:
        raise ConfigError(f"unknown scenario preset {name!r}; known: {list(PRESETS)}")
    base = Scenario(
        name=name, seed=0, seconds=_seconds(slots), fps=fps, size=size, incidents=_timetable(slots)
    )
    if name == "clear_day":
        sc = replace(base, seed=11, arrivals_per_lane_s=0.1, noise_sigma=2.0, cloud_at=60.0)
    elif name == "dusk_noise":
        sc = replace(
            base, seed=23, arrivals_per_lane_s=0.1, noise_sigma=5.0, light=(0.85, 0.4), shadow_length=1.4
        )
    elif name == "heavy_traffic":
        sc = replace(base, seed=37, arrivals_per_lane_s=0.22, noise_sigma=3.0)
    elif name == "ghosts":
        sc = _ghosts(base)
    else:
        sc = replace(base, seed=53, size=(320, 180), incidents=_timetable(slots, far_wrong_way=True))
    return replace(sc, seed=sc.seed + seed_offset)


def _ghosts(base: Scenario) -> Scenario:
    """Vehicles in the background when the camera starts: one that leaves at once (west_1, whose
    first staged incident comes at 56 s) and a parked car driving off at 40 s (east_2: 69 s);
    auto-exposure jumps down and back up."""
    parked = (Injected("parked", "west_1", 3.0), Injected("parked", "east_2", 40.0))
    steps = ((30.0, 0.75), (85.0, 1.3), (140.0, 0.85), (200.0, 1.2))
    return replace(
        base, seed=71, arrivals_per_lane_s=0.12, incidents=parked + base.incidents, exposure_steps=steps
    )


PRESETS = ("clear_day", "dusk_noise", "heavy_traffic", "ghosts", "far_320")


def suite(slots: int = 7, size: tuple[int, int] = (640, 360), seed_offset: int = 0) -> list[Scenario]:
    """The evaluation suite: every preset, `slots` x 3 incidents each."""
    return [preset(name, slots, size, seed_offset=seed_offset) for name in PRESETS]
