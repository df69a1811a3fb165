"""Wrong way: a track that keeps travelling against its lane's direction, far and long enough.

One incident per offending vehicle (a track, and the fragments it hands over to), with a
per-lane storm limit so a lane full of reversed traffic cannot flood the uplink. A wrong-way
car meets oncoming traffic: its blob merges with an oncoming one and comes out under another
track id. A track that starts going the wrong way just ahead of where a drive in its lane was
lost a moment ago carries that drive on (its start, and whether it was reported).
"""

from __future__ import annotations

import math

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.edge.camera.rules.edges import cut_off
from cityedge.edge.camera.rules.lanes import AgainstRun, LaneState
from cityedge.edge.camera.rules.tracks import Drive, Point, TrackMemory, same_size
from cityedge.protocol.vision import Incident, TrackState

__all__ = ["WrongWayRule"]

HANDOVER_S = 2.0  # a drive lost this long ago may be carried on by another track
REAR_SHARE = 0.5  # the box's rear and front must each have come this share of the needed travel
CAR_ASPECT = 3.0  # width over height of the widest box a drive is carried between


class WrongWayRule:
    def __init__(self, config: RuleConfig, frame_size: tuple[int, int] | None = None) -> None:
        self.config = config
        self.frame_size = frame_size
        self._now = -math.inf  # when the frame being judged was taken
        self._going: tuple[float, set[int]] = (-math.inf, set())

    def frame(self, t: float, matched: set[int]) -> None:
        """The frame about to be judged, taken at `t`: the tracks the tracker matched to a
        detection in it (a drive their track was on in the frame before is not lost)."""
        self._going, self._now = (self._now, matched), t

    def _one_car_drove(self, track: TrackState, ends: Point, drive: Drive, need: float) -> bool:
        """Not a blob that grew at one end or shrank at the other (blobs merging or parting),
        nor one fading out or swelling: the same car's box, moved whole. Its length along the
        lane too: a blob of several cars that parts leaves a track on the last one out, whose
        box, a fraction of the blob's, seems to have sped off (unless the frame's edge cut
        one of them off)."""
        height = track.box.y2 - track.box.y1
        if not same_size(height, max(drive.height, 1.0)):
            return False
        length, was = ends[1] - ends[0], drive.ends[1] - drive.ends[0]
        if not (drive.cut or self._cut(track) or same_size(max(length, 1.0), max(was, 1.0))):
            return False
        return self._both_ends_moved(track, ends, drive.ends, REAR_SHARE * need)

    def _cut(self, track: TrackState) -> bool:
        """Whether the frame's edge cuts the track's box off (unknown frame: no)."""
        return cut_off(track.box, self.frame_size)

    def _both_ends_moved(self, track: TrackState, ends: Point, start: Point, least: float) -> bool:
        """Whether the box's rear and its front have both come `least` pixels the wrong way:
        a car driving moves both, a blob that grows as a vehicle merges into it (or shrinks as
        one leaves it) moves one. A front cut off by the frame's edge cannot move."""
        if ends[0] - start[0] < least:
            return False
        return ends[1] - start[1] >= least or self._cut(track)

    def judge(
        self,
        camera: str,
        track: TrackState,
        lane: str,
        direction: Point | None,
        state: LaneState,
        memory: TrackMemory,
        t: float,
        behind: LaneState | None = None,
    ) -> Incident | None:
        """`behind`: the state of the lane behind that the track's box reaches into, if any."""
        if direction is None or "wrong_way" in memory.reported or memory.last_hit != t:
            return None  # (a track the tracker did not find this frame coasts on a guess: no evidence)
        if _in_a_queue(state, behind) or not self._against(direction, track.velocity):
            memory.against = None
            return None
        foot, height = track.box.foot, track.box.y2 - track.box.y1
        ends = _ends((track.box.x1, track.box.y1, track.box.x2, track.box.y2), direction)
        if memory.against is None and not self._take_up(track, direction, state, memory, ends, t):
            return None
        drive = self._start(memory, foot, height)
        t0, p0 = drive.since, drive.start
        self._seen(state, track, memory, t)
        dx, dy = foot[0] - p0[0], foot[1] - p0[1]
        travel = math.hypot(dx, dy)
        cfg = self.config
        need = min(cfg.wrong_way_min_travel_px, cfg.wrong_way_min_travel_boxes * height)
        if t - t0 < cfg.wrong_way_min_s or travel < need or not self._against(direction, (dx, dy)):
            return None
        if not self._one_car_drove(track, ends, drive, need):
            return None
        memory.reported.add("wrong_way")  # one incident per vehicle, reported or held back
        if not state.storm_allows(t, cfg.wrong_way_storm_max, cfg.wrong_way_storm_window_s):
            state.held_back += 1
            return None
        state.wrong_way_at.append(t)
        held, state.held_back = state.held_back, 0
        cos = (dx * direction[0] + dy * direction[1]) / travel
        return Incident(
            type="wrong_way",
            camera=camera,
            lane=lane,
            started_at=t0,
            detected_at=t,
            position=foot,
            track_id=track.track_id,
            details={"travel_px": round(travel, 1), "cos": round(cos, 3), "held_back": held},
        )

    def _take_up(
        self,
        track: TrackState,
        direction: Point,
        state: LaneState,
        memory: TrackMemory,
        ends: Point,
        t: float,
    ) -> bool:
        """Start the track's drive the wrong way, or carry on one another track lost; whether it
        is to be judged now (a drive carried on, not yet reported). A drive starts from a box one
        vehicle could fill: a merged blob's foot says little of where any one car is."""
        box, cut = track.box, self._cut(track)
        if not _car_like((box.x1, box.y1, box.x2, box.y2)):
            return False
        height = box.y2 - box.y1
        run = _handover(state, track, direction, t, self._going)
        if run is None:
            memory.against = Drive(t, box.foot, ends, height, cut)
            self._seen(state, track, memory, t)
            return False
        memory.against = Drive(run.since, _carried_start(run, track, t), ends, height, cut)
        run.reported |= memory.reported
        memory.reported = run.reported
        return "wrong_way" not in memory.reported

    @staticmethod
    def _seen(state: LaneState, track: TrackState, memory: TrackMemory, t: float) -> None:
        """The lane's record of the track's wrong-way drive, for a track that may carry it on."""
        assert memory.against is not None
        b = track.box
        state.against[track.track_id] = AgainstRun(
            memory.against.since,
            memory.against.start,
            t,
            b.foot,
            (b.x1, b.y1, b.x2, b.y2),
            math.hypot(*track.velocity),
            memory.reported,
        )

    @staticmethod
    def _start(memory: TrackMemory, foot: Point, height: float) -> Drive:
        """The track's drive the wrong way: since when and from where it has been going."""
        assert memory.against is not None
        p0 = memory.against.start
        if memory.before is not None and not 0.7 <= height / max(memory.before[1], 1.0) <= 1.43:
            # the blob merged with or split from a neighbour since the last frame, which moved
            # its foot without driving: that jump is not travel
            (bx, by), _ = memory.before
            p0 = (p0[0] + foot[0] - bx, p0[1] + foot[1] - by)
            memory.against = memory.against._replace(start=p0)
        return memory.against

    def _against(self, direction: Point, motion: Point) -> bool:
        """Motion (a velocity or a displacement) clearly against the lane's direction."""
        norm = math.hypot(*motion)
        if norm < max(self.config.wrong_way_min_speed_px_s, 1e-9):
            return False
        return (motion[0] * direction[0] + motion[1] * direction[1]) / norm <= self.config.wrong_way_max_cos


def _in_a_queue(state: LaneState, behind: LaneState | None) -> bool:
    """In a queue, blobs of several cars shrink and grow at their ends, which moves a blob's
    centre backwards without anyone driving backwards: no wrong-way judgement there, nor on a box
    reaching (with its centre) into a queue forming or standing in the lane behind, where passing
    cars and queued ones merge into blobs and part again, every which way (a queue behind that
    has cleared, while its lane waits out `congestion_clear_s`, holds no one still)."""
    mine = state.queue.congested or state.queue.forming
    return mine or (behind is not None and (behind.queue.queued or behind.queue.forming))


def _handover(
    state: LaneState, track: TrackState, direction: Point, t: float, going: tuple[float, set[int]]
) -> AgainstRun | None:
    """The drive in this lane, lost under `HANDOVER_S` ago by another track, that `track` now
    going the wrong way continues: its foot lies between the back of that track's last box and
    just ahead of the box's front (as far as it could have driven since), along the lane."""
    for tid, run in list(state.against.items()):
        if t - run.last > HANDOVER_S:
            del state.against[tid]
    foot, height = track.box.foot, track.box.y2 - track.box.y1
    box = (track.box.x1, track.box.y1, track.box.x2, track.box.y2)
    ahead = (-direction[0], -direction[1])  # the wrong way
    along = foot[0] * ahead[0] + foot[1] * ahead[1]
    across = foot[1] * ahead[0] - foot[0] * ahead[1]
    for tid, run in state.against.items():
        if (
            tid == track.track_id
            or run.last >= t
            or _going_on(tid, run, going)
            or not (_car_like(run.box) and _car_like(box))
        ):
            continue
        x1, y1, x2, y2 = run.box
        rear, front = _ends(run.box, direction)
        acrosses = [y * ahead[0] - x * ahead[1] for x in (x1, x2) for y in (y1, y2)]
        reach = max(run.speed, math.hypot(*track.velocity)) * (t - run.last) + height
        if rear - height <= along <= front + reach and (
            min(acrosses) - height <= across <= max(acrosses) + height
        ):
            del state.against[tid]
            return run
    return None


def _going_on(tid: int, run: AgainstRun, going: tuple[float, set[int]]) -> bool:
    """Whether the drive's own track is still on it: matched now, and going the wrong way in the
    frame before (judged later in this frame, its drive looks lost a frame ago, but is not)."""
    before, matched = going
    return tid in matched and run.last >= before


def _carried_start(run: AgainstRun, track: TrackState, t: float) -> Point:
    """Where the carried-on drive counts from: the travel the drive had made, plus the step from
    where it was lost to where it is found, no longer than it could have driven in between (the
    foot of a blob that merged with oncoming cars lies off the car's), back from the foot now."""
    foot = track.box.foot
    made = (run.foot[0] - run.start[0], run.foot[1] - run.start[1])
    step = (foot[0] - run.foot[0], foot[1] - run.foot[1])
    reach = max(run.speed, math.hypot(*track.velocity)) * (t - run.last)
    length = math.hypot(*step)
    if length > reach:
        step = (step[0] * reach / length, step[1] * reach / length)
    return (foot[0] - made[0] - step[0], foot[1] - made[1] - step[1])


def _car_like(box: tuple[float, float, float, float]) -> bool:
    """A box one vehicle could fill: a blob of several merged vehicles (a queue discharging,
    cars side by side) stretches far wider than tall, and its foot says little of any one car."""
    x1, y1, x2, y2 = box
    return x2 - x1 <= CAR_ASPECT * (y2 - y1)


def _ends(box: tuple[float, float, float, float], direction: Point) -> Point:
    """How far the wrong way the box's rear and its front lie (along the lane, reversed)."""
    x1, y1, x2, y2 = box
    along = [-x * direction[0] - y * direction[1] for x in (x1, x2) for y in (y1, y2)]
    return (min(along), max(along))
