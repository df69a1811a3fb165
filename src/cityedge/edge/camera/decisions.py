"""Decision policy: incidents and congestion changes in, local actions (`Decision`s) out.

Pure: no I/O, no clock. The pipeline passes the frame's capture time and `now`, then
publishes and records what comes back; which action follows which event is configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cityedge.protocol.vision import CongestionChange, Decision, Incident

__all__ = ["ActionSpec", "DecisionConfig", "DecisionPolicy"]


class ActionSpec(BaseModel):
    """One action to take: its name on the local bus and fixed parameters for the actuator."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    action: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    params: dict[str, Any] = Field(default_factory=dict)


def _spec(action: str, **params: Any) -> ActionSpec:
    return ActionSpec(action=action, params=params)


def _default_incident_actions() -> dict[str, list[ActionSpec]]:
    return {
        # A stopped vehicle is a hazard for the traffic behind it: warn and light it up.
        "stopped_vehicle": [_spec("alert", severity="high"), _spec("raise_lighting", level=1.0, hold_s=900)],
        "wrong_way": [_spec("alert", severity="critical")],
        "congestion": [_spec("alert", severity="low")],
    }


class DecisionConfig(BaseModel):
    """Which actions follow which event. Unknown keys are rejected at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    on_incident: dict[str, list[ActionSpec]] = Field(default_factory=_default_incident_actions)
    on_congestion: list[ActionSpec] = Field(default_factory=lambda: [_spec("extend_green", extra_s=10)])
    on_congestion_clear: list[ActionSpec] = Field(default_factory=lambda: [_spec("restore_timing")])


class DecisionPolicy:
    """Maps one frame's rule output to decisions; keeps no state between frames."""

    def __init__(self, config: DecisionConfig | None = None) -> None:
        self.config = config or DecisionConfig()

    def decide(
        self,
        incidents: Iterable[Incident],
        congestion: Iterable[CongestionChange],
        *,
        captured_at: float,
        now: float,
    ) -> list[Decision]:
        out: list[Decision] = []
        for inc in incidents:
            reason = f"{inc.type} in lane {inc.lane}"
            params = {"incident_started_at": inc.started_at, "track_id": inc.track_id}
            for spec in self.config.on_incident.get(inc.type, []):
                out.append(_decision(spec, inc.camera, inc.lane, reason, now, captured_at, params))
        for change in congestion:
            specs = self.config.on_congestion if change.congested else self.config.on_congestion_clear
            reason = f"congestion {'on' if change.congested else 'cleared'} in lane {change.lane}"
            params = {"occupancy": change.occupancy, "mean_speed_px_s": change.mean_speed}
            for spec in specs:
                out.append(_decision(spec, change.camera, change.lane, reason, now, captured_at, params))
        return out


def _decision(
    spec: ActionSpec,
    camera: str,
    lane: str,
    reason: str,
    now: float,
    captured_at: float,
    extra: dict[str, Any],
) -> Decision:
    return Decision(
        action=spec.action,
        camera=camera,
        lane=lane,
        reason=reason,
        decided_at=now,
        captured_at=captured_at,
        params={**spec.params, **extra},
    )
