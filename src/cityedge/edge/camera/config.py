"""One camera's configuration: where its stream is, how it is perceived, judged and recorded.

Validated once at start-up (unknown keys rejected, errors name the camera and field); the
pipeline builds its source, detector, tracker, rules and decision policy from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityedge.configfile import parse_config
from cityedge.edge.camera.decisions import DecisionConfig
from cityedge.edge.camera.detectors.motion import MotionConfig
from cityedge.edge.camera.rules import RuleConfig
from cityedge.edge.camera.tracker import TrackerConfig
from cityedge.edge.camera.zones import CameraZones

__all__ = ["CameraConfig", "DetectorConfig", "load_node_cameras", "node_camera_sections", "parse_camera"]


class DetectorConfig(BaseModel):
    """`name` picks a registered plugin; `options` is that plugin's own section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "motion"
    options: dict[str, Any] = Field(default_factory=dict)
    # A heavy detector only looks where the motion model saw movement (Frigate's gating).
    motion_gate: bool = True


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    url: str = Field(min_length=1)
    fps: float = Field(default=10.0, gt=0, le=60)  # frames judged per second; faster sources are thinned
    size: tuple[int, int] | None = None  # decode at this (width, height); None keeps the native size
    loop: bool = False  # files only: start again at the end (synthetic feeds, benches)
    realtime: bool | None = None  # None: pace files, not live streams
    stall_timeout_s: float = Field(default=5.0, gt=0)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tracker: TrackerConfig | None = None  # None: defaults with the camera's fps
    zones: CameraZones
    rules: RuleConfig = Field(default_factory=RuleConfig)
    decisions: DecisionConfig = Field(default_factory=DecisionConfig)
    record: bool = False  # keep the raw stream in retention segments on this node

    @model_validator(mode="after")
    def _zones_of_this_camera(self) -> CameraConfig:
        if self.zones.camera != self.id:
            raise ValueError(f"zones are for camera {self.zones.camera!r}, not {self.id!r}")
        return self

    def tracker_config(self) -> TrackerConfig:
        return self.tracker or TrackerConfig(fps=self.fps)


def parse_camera(data: Any, source: str) -> CameraConfig:
    """Validate one camera section; the error names `source`, the camera and each bad field."""
    camera = data.get("id", "?") if isinstance(data, dict) else "?"
    return parse_config(CameraConfig, data, source, f"camera {camera}")


def node_camera_sections(path: Path, camera: str | None = None) -> list[dict[str, Any]]:
    """The raw camera sections of a node's config file (all, or the one with id `camera`);
    the node's own keys are validated as the agent validates them."""
    from cityedge.configfile import load_config
    from cityedge.edge.config import EdgeConfig
    from cityedge.protocol.errors import ConfigError

    node = load_config(EdgeConfig, path)
    sections = [c for c in node.cameras if isinstance(c, dict)]
    known = [c.get("id") for c in sections]
    if camera is not None:
        sections = [c for c in sections if c.get("id") == camera]
        if not sections:
            raise ConfigError(f"{path}: node {node.node_id} has no camera {camera!r}; its cameras: {known}")
    if not sections:
        raise ConfigError(f"{path}: node {node.node_id} has no cameras")
    return sections


def load_node_cameras(path: Path, camera: str | None = None) -> list[CameraConfig]:
    """The cameras of a node's config file (all, or the one with id `camera`), validated as
    the agent validates them at start-up."""
    return [parse_camera(c, str(path)) for c in node_camera_sections(path, camera)]
