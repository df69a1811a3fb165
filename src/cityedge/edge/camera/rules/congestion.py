"""Congestion of one lane: a window of occupancy, speed and vehicle counts, and a small phase
table that turns the lane congested (after the window said so long enough, forgiving short
lapses while the queue forms) and free again (after it said free long enough)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.protocol.errors import TransitionError

__all__ = ["TRANSITIONS", "CongestionWatch", "Phase", "Signal", "Turn", "Window"]


class Phase(Enum):
    FREE = "free"
    FORMING = "forming"  # jammed, not yet for congestion_after_s
    LAPSING = "lapsing"  # forming, but the window said calm for under congestion_grace_s
    CONGESTED = "congested"
    CLEARING = "clearing"  # congested, the window says free, not yet for congestion_clear_s


class Signal(Enum):
    JAMMED = "jammed"  # the window meets every "on" threshold (judged unless congested)
    CALM = "calm"  # ... it does not
    FREED = "freed"  # the window meets any "off" threshold (judged while congested)
    BUSY = "busy"  # ... it does not
    HELD = "held"  # the phase's timer ran out (after_s, grace_s or clear_s)


# the phase after a signal, by phase: a signal a phase does not list is a bug (TransitionError)
TRANSITIONS: dict[Phase, dict[Signal, Phase]] = {
    Phase.FREE: {Signal.JAMMED: Phase.FORMING, Signal.CALM: Phase.FREE},
    Phase.FORMING: {Signal.JAMMED: Phase.FORMING, Signal.CALM: Phase.LAPSING, Signal.HELD: Phase.CONGESTED},
    Phase.LAPSING: {Signal.JAMMED: Phase.FORMING, Signal.CALM: Phase.LAPSING, Signal.HELD: Phase.FREE},
    Phase.CONGESTED: {Signal.BUSY: Phase.CONGESTED, Signal.FREED: Phase.CLEARING},
    # a clearing lane is congested again only when a queue forms anew ("on" thresholds): traffic
    # driving through over a stopped car or a ghost left behind is not a queue
    Phase.CLEARING: {Signal.JAMMED: Phase.CONGESTED, Signal.CALM: Phase.CLEARING, Signal.HELD: Phase.FREE},
}


@dataclass(frozen=True)
class Window:
    occupancy: float  # boxes' area over the lane's area, mean over the window
    speed: float | None  # mean track speed in box heights per second (None: no tracks)
    vehicles: float  # mean tracks in the lane


@dataclass(frozen=True)
class Turn:
    """The lane turned congested (with when the queue began) or free."""

    congested: bool
    at: float
    started: float | None
    window: Window


@dataclass
class CongestionWatch:
    phase: Phase = Phase.FREE
    on_since: float | None = None  # when the current jam began (FORMING, LAPSING)
    off_since: float | None = None  # when the current lapse or clearing began (LAPSING, CLEARING)
    began: float | None = None  # when the standing queue began (CONGESTED, CLEARING)
    samples: deque[tuple[float, float, list[float]]] = field(default_factory=deque)

    @property
    def congested(self) -> bool:
        return self.phase in (Phase.CONGESTED, Phase.CLEARING)

    @property
    def forming(self) -> bool:
        """A queue may be forming: the other rules wait and see."""
        return self.phase in (Phase.FORMING, Phase.LAPSING)

    @property
    def queued(self) -> bool:
        """A queue stands in the lane (congested, not clearing): a vehicle still in it is part of it."""
        return self.phase is Phase.CONGESTED

    @property
    def unsettled(self) -> bool:
        """A queue may be forming or dissolving: the other rules wait and see."""
        return self.phase in (Phase.FORMING, Phase.LAPSING, Phase.CLEARING)

    def step(self, t: float, occupancy: float, speeds: list[float], cfg: RuleConfig) -> Turn | None:
        """Add this frame's sample; the turn the lane took now, if any."""
        window = self._window(t, occupancy, speeds, cfg)
        if window is None:
            return None
        was = self.congested
        self._go(self._signal(window, cfg), t)
        if self._held(t, cfg):
            self._go(Signal.HELD, t)
        if self.congested == was:
            return None
        return Turn(self.congested, t, self.began if self.congested else None, window)

    def _signal(self, w: Window, cfg: RuleConfig) -> Signal:
        if self.phase is Phase.CONGESTED:
            freed = (
                w.speed is None
                or w.occupancy < cfg.congestion_occupancy_off
                or w.speed > cfg.congestion_speed_off_hps
            )
            return Signal.FREED if freed else Signal.BUSY
        jammed = (
            w.speed is not None
            and w.vehicles >= cfg.congestion_min_vehicles
            and w.occupancy >= cfg.congestion_occupancy_on
            and w.speed <= cfg.congestion_speed_on_hps
        )
        return Signal.JAMMED if jammed else Signal.CALM

    def _held(self, t: float, cfg: RuleConfig) -> bool:
        if self.phase is Phase.FORMING:
            return self.on_since is not None and t - self.on_since >= cfg.congestion_after_s
        if self.phase is Phase.LAPSING:
            # a queue flickers around the thresholds as it forms: forgive short lapses
            return self.off_since is not None and t - self.off_since > cfg.congestion_grace_s
        if self.phase is Phase.CLEARING:
            return self.off_since is not None and t - self.off_since >= cfg.congestion_clear_s
        return False

    def _go(self, signal: Signal, t: float) -> None:
        after = TRANSITIONS[self.phase].get(signal)
        if after is None:
            raise TransitionError(f"congestion: no transition from {self.phase.value} on {signal.value}")
        if after is Phase.FORMING:
            self.on_since = self.on_since if self.on_since is not None else t
            self.off_since = None
        elif after in (Phase.LAPSING, Phase.CLEARING):
            self.off_since = self.off_since if self.off_since is not None else t
        elif after is Phase.CONGESTED:
            if self.phase is Phase.FORMING:
                self.began = self.on_since
            self.on_since = self.off_since = None
        else:
            self.on_since = self.off_since = self.began = None
        self.phase = after

    def _window(self, t: float, occupancy: float, speeds: list[float], cfg: RuleConfig) -> Window | None:
        """Mean occupancy, mean track speed and mean track count over the window (None until
        the window is full)."""
        self.samples.append((t, occupancy, speeds))
        while self.samples[0][0] < t - cfg.congestion_window_s:
            self.samples.popleft()
        if t - self.samples[0][0] < 0.75 * cfg.congestion_window_s:
            return None
        occ = sum(s[1] for s in self.samples) / len(self.samples)
        all_speeds = [v for s in self.samples for v in s[2]]
        mean = sum(all_speeds) / len(all_speeds) if all_speeds else None
        return Window(occ, mean, len(all_speeds) / len(self.samples))
