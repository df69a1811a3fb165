"""The rules' thresholds: one validated, frozen settings object per camera (`rules:`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RuleConfig"]


class RuleConfig(BaseModel):
    """Thresholds of the rules. Pixel speeds and distances (`*_px`, `*_px_s`) are pixels of a
    frame `reference_width` wide (640): the engine scales them to the width of the frames it
    judges, so one set of rules serves 320, 640 and 1280 px streams. Distances in box heights
    (`*_boxes`, `*_hps`) and ratios (occupancy) need no scaling: a far vehicle's box shrinks as
    its pixel speed and travel do."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    reference_width: int = Field(640, ge=16)
    """frame width the `*_px` and `*_px_s` thresholds are given for; they are scaled to the judged
    frame's width (the zones' `frame_size` after fitting to the stream)"""

    min_hits: int = Field(3, ge=1)
    """track confirmations before any rule looks at it"""
    foot_lift: float = Field(0.1, ge=0, le=0.5)
    """lanes are judged this fraction of the box height above its bottom centre: the bottom edge of an
    obliquely seen tall vehicle (or its shadow) lies past its lane line"""
    stopped_after_s: float = Field(10.0, gt=0)
    """dwell while stationary before an incident"""
    stopped_speed_px_s: float = Field(4.0, gt=0)
    """mean foot speed under which a vehicle is still"""
    stopped_probe_s: float = Field(2.0, gt=0)
    """span the stationary speed is measured over"""
    stopped_cooldown_s: float = Field(30.0, ge=0)
    stopped_spot_px: float = Field(15.0, gt=0)
    """a still track this close to a known still spot is the same vehicle"""
    stopped_min_travel_px: float = Field(60.0, ge=0)
    """a vehicle must have arrived moving: still since first seen is not stopping"""
    stopped_min_height_px: float = Field(16.0, gt=0)
    """a still box shorter than this is no vehicle: the rim of a ghost or the edge of a shadow"""
    stopped_arrival_s: float = Field(1.0, ge=0)
    """... at driving speed (`wrong_way_min_speed_px_s`) for this long: a ghost or a parked car never
    was, a blob that merged with a passing car jumps but does not keep moving"""
    wrong_way_min_travel_px: float = Field(90.0, gt=0)
    """a wrong-way track must have travelled this far against its lane ..."""
    wrong_way_min_travel_boxes: float = Field(3.0, gt=0)
    """... or this many of its own box heights, if that is less: a far, small vehicle covers fewer
    pixels for the same drive"""
    wrong_way_min_s: float = Field(0.7, ge=0)
    """how long a track must keep going the wrong way"""
    wrong_way_min_speed_px_s: float = Field(20.0, ge=0)
    """slower is not driving, either way"""
    wrong_way_max_cos: float = Field(-0.5, ge=-1, le=0)
    """cos(travel, lane direction) at most"""
    wrong_way_storm_max: int = Field(10, ge=1)
    """each offending vehicle is one incident, but at most this many per lane within
    `wrong_way_storm_window_s`: a storm (a misdrawn direction, a closed road used both ways) is capped;
    the next incident after a storm carries how many were held back"""
    wrong_way_storm_window_s: float = Field(60.0, gt=0)
    """the window of the storm limit"""
    congestion_window_s: float = Field(4.0, gt=0)
    """window the occupancy and speed average over"""
    congestion_occupancy_on: float = Field(0.35, gt=0)
    """boxes' area over the lane's area"""
    congestion_occupancy_off: float = Field(0.25, ge=0)
    # queue speeds in box heights per second: a vehicle's box height shrinks with distance as
    # its pixel speed does, so one threshold holds for near and far lanes alike
    congestion_speed_on_hps: float = Field(1.5, gt=0)
    """mean speed, box heights per second"""
    congestion_speed_off_hps: float = Field(2.5, gt=0)
    congestion_min_vehicles: float = Field(2.0, ge=0)
    """mean tracks in the lane over the window"""
    congestion_after_s: float = Field(10.0, ge=0)
    """the window must say congested this long"""
    congestion_grace_s: float = Field(2.0, ge=0)
    """lapses this short do not restart the count"""
    congestion_clear_s: float = Field(10.0, ge=0)
    """... and not congested this long to clear"""
    congestion_cooldown_s: float = Field(60.0, ge=0)
    count_window_s: float = Field(60.0, gt=0)
    forget_after_s: float = Field(5.0, gt=0)
    """drop a track's memory after this long unseen"""

    def for_width(self, width: int) -> RuleConfig:
        """These rules for frames `width` pixels wide (the same rules again for that width)."""
        if width == self.reference_width:
            return self
        return self.scaled(width / self.reference_width).model_copy(update={"reference_width": width})

    def scaled(self, factor: float) -> RuleConfig:
        """The same rules for frames `factor` times as wide (pixel thresholds scale)."""
        names = [n for n in type(self).model_fields if n.endswith(("_px", "_px_s"))]
        return self.model_copy(update={n: getattr(self, n) * factor for n in names})
