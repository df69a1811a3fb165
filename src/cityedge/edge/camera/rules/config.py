"""The rules' thresholds: one validated, frozen settings object per camera (`rules:`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RuleConfig"]


class RuleConfig(BaseModel):
    """Thresholds of the rules. Pixel speeds and distances (`*_px`, `*_px_s`) suit frames about
    640 px wide: use `scaled(width / 640)` for other sizes. Queue speed is in box heights per
    second and occupancy is a ratio, so neither depends on the frame size or the distance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_hits: int = Field(3, ge=1, description="track confirmations before any rule looks at it")
    foot_lift: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="lanes are judged this fraction of the box height above its bottom centre: the"
        " bottom edge of an obliquely seen tall vehicle (or its shadow) lies past its lane line",
    )
    stopped_after_s: float = Field(10.0, gt=0, description="dwell while stationary before an incident")
    stopped_speed_px_s: float = Field(4.0, gt=0, description="mean foot speed under which a vehicle is still")
    stopped_probe_s: float = Field(2.0, gt=0, description="span the stationary speed is measured over")
    stopped_cooldown_s: float = Field(30.0, ge=0)
    stopped_spot_px: float = Field(
        15.0, gt=0, description="a still track this close to a known still spot is the same vehicle"
    )
    stopped_min_travel_px: float = Field(
        20.0, ge=0, description="a vehicle must have arrived moving: still since first seen is not stopping"
    )
    wrong_way_min_travel_px: float = Field(90.0, gt=0)
    wrong_way_min_s: float = Field(0.7, ge=0, description="how long a track must keep going the wrong way")
    wrong_way_min_speed_px_s: float = Field(20.0, ge=0, description="slower is not driving, either way")
    wrong_way_max_cos: float = Field(-0.5, ge=-1, le=0, description="cos(travel, lane direction) at most")
    wrong_way_cooldown_s: float = Field(20.0, ge=0)
    congestion_window_s: float = Field(4.0, gt=0, description="window the occupancy and speed average over")
    congestion_occupancy_on: float = Field(0.35, gt=0, description="boxes' area over the lane's area")
    congestion_occupancy_off: float = Field(0.25, ge=0)
    # queue speeds in box heights per second: a vehicle's box height shrinks with distance as
    # its pixel speed does, so one threshold holds for near and far lanes alike
    congestion_speed_on_hps: float = Field(1.5, gt=0, description="mean speed, box heights per second")
    congestion_speed_off_hps: float = Field(2.5, gt=0)
    congestion_min_vehicles: float = Field(2.0, ge=0, description="mean tracks in the lane over the window")
    congestion_after_s: float = Field(10.0, ge=0, description="the window must say congested this long")
    congestion_grace_s: float = Field(2.0, ge=0, description="lapses this short do not restart the count")
    congestion_clear_s: float = Field(10.0, ge=0, description="... and not congested this long to clear")
    congestion_cooldown_s: float = Field(60.0, ge=0)
    count_window_s: float = Field(60.0, gt=0)
    forget_after_s: float = Field(5.0, gt=0, description="drop a track's memory after this long unseen")

    def scaled(self, factor: float) -> RuleConfig:
        """The same rules for frames `factor` times as wide (pixel thresholds scale)."""
        names = [n for n in type(self).model_fields if n.endswith(("_px", "_px_s"))]
        return self.model_copy(update={n: getattr(self, n) * factor for n in names})
