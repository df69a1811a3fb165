"""Ground truth from what the scene really did: staged vehicles' incidents and true congestion."""

from __future__ import annotations

from cityedge.edge.camera.zones import CameraZones
from cityedge.sim.scene.model import GroundTruthIncident
from cityedge.sim.scene.traffic import Vehicle

__all__ = ["FREE_FOR_S", "Truth"]

FREE_FOR_S = 3.0  # a queue has gone once its lane stayed free this long: a dip is not its end


class Truth:
    """Builds the ground-truth incidents from what the scene really did."""

    def __init__(self, zones: CameraZones, start_time: float, view: dict[str, tuple[float, float]]):
        self.zones, self.t0, self.view = zones, start_time, view
        self.open: dict[tuple[str, str, int | None], GroundTruthIncident] = {}
        self.done: list[GroundTruthIncident] = []
        self.staged: dict[int, str] = {}
        self.free_since: dict[str, float] = {}  # lanes with an open episode that are free now

    def vehicle(self, v: Vehicle, box: tuple[float, float, float, float] | None, t: float) -> None:
        kind = self.staged.get(v.id)
        if kind is None or box is None:
            return
        foot = _foot(box)
        key = (kind, v.lane, v.id)
        active = (kind == "wrong_way" and self.zones.lane_at(foot) is not None) or (
            kind == "stopped_vehicle" and v.stopped_since is not None and not v.done_stopping
        )
        # a staged vehicle is one incident from first to last active frame (clipping at the
        # frame edge may hide its foot for a moment)
        if active and key not in self.open:
            start = v.stopped_since if kind == "stopped_vehicle" and v.stopped_since is not None else t
            self.open[key] = GroundTruthIncident(kind, v.lane, self.t0 + start, self.t0 + t, foot, v.id)
        elif active:
            self.open[key].end = self.t0 + t

    def lane(
        self,
        lane: str,
        vehicles: list[Vehicle],
        boxes: dict[int, tuple[float, float, float, float]],
        t: float,
    ) -> None:
        """A lane is truly congested while its in-view vehicles crawl (< 3 m/s) and cover
        at least 40 % of its length; the episode starts when both first hold and ends when the
        lane has been free (faster than 5 m/s, or under 20 % covered) for `FREE_FOR_S`: a
        moment's gap in a queue (a car leaving its head before the next closes up, one not yet
        in view) does not make two queues of one."""
        covered, speed = self._traffic(lane, vehicles, boxes)
        key = ("congestion", lane, None)
        jammed = speed is not None and speed < 3.0 and covered >= 0.4
        free = speed is None or speed > 5.0 or covered < 0.2
        if jammed and key not in self.open:
            self.open[key] = GroundTruthIncident(
                "congestion", lane, self.t0 + t, self.t0 + t, self._centre(lane)
            )
        elif key in self.open and not free:
            self.open[key].end = self.t0 + t
            self.free_since.pop(lane, None)
        elif key in self.open and t - self.free_since.setdefault(lane, t) >= FREE_FOR_S:
            self.done.append(self.open.pop(key))
            del self.free_since[lane]

    def _traffic(
        self, lane: str, vehicles: list[Vehicle], boxes: dict[int, tuple[float, float, float, float]]
    ) -> tuple[float, float | None]:
        """The share of the lane's visible length its vehicles cover, and their mean speed."""
        seen = [v for v in vehicles if v.lane == lane and v.id in boxes and not v.wrong_way]
        seen = [v for v in seen if self.zones.lane_at(_foot(boxes[v.id]))]
        covered = sum(v.length + 2.0 for v in seen) / (self.view[lane][1] - self.view[lane][0])
        return covered, (sum(v.v for v in seen) / len(seen) if seen else None)

    def _centre(self, lane: str) -> tuple[float, float]:
        poly = next(ln for ln in self.zones.lanes if ln.name == lane).polygon
        return (sum(p[0] for p in poly) / len(poly), sum(p[1] for p in poly) / len(poly))

    def finish(self) -> list[GroundTruthIncident]:
        return sorted(self.done + list(self.open.values()), key=lambda i: (i.start, i.type, i.lane))


def _foot(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, box[3])
