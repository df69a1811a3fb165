"""The supervisor's one typed config (YAML, unknown keys refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityedge.edge.config import BrokerEndpoint
from cityedge.protocol.envelope import NAME_PATTERN

__all__ = ["HealthConfig", "NotifyConfig", "OtaConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthConfig(_Strict):
    metrics_url: str = "http://127.0.0.1:9310/metrics"
    soak_s: float = Field(120.0, ge=0)
    settle_s: float = Field(20.0, ge=0)
    min_fps: float | None = Field(
        None, ge=0, description="every camera at least this fast (e.g. 0.8 x its fps)"
    )
    require_uplink: bool = True
    poll_s: float = Field(2.0, gt=0)


class NotifyConfig(BrokerEndpoint):
    """Where `down/ota` notices arrive; the client id must differ from the agent's."""

    client_id: str = ""


class OtaConfig(_Strict):
    node_id: str = Field(pattern=NAME_PATTERN)
    district: str = Field(pattern=NAME_PATTERN)
    hardware: str
    ota_dir: Path = Field(description="writable: slots, state file, TUF cache, report spool")
    trusted_root: Path = Field(description="the repository's root.json from the node's install (read-only)")
    repository_url: str = Field(pattern=r"^https://", description="e.g. https://control.city.example/tuf")
    cafile: Path | None = None
    accept_channels: list[Literal["canary", "staging", "stable"]] = ["stable"]
    check_interval_s: float = Field(3600.0, gt=0)
    health: HealthConfig = HealthConfig()
    notify: NotifyConfig | None = None
    workload_env: dict[str, str] = {}

    @model_validator(mode="after")
    def _root_outside_the_cache(self) -> OtaConfig:
        if self.trusted_root.resolve().is_relative_to(self.ota_dir.resolve()):
            raise ValueError("trusted_root must come from the install, not from the writable ota_dir")
        if not self.accept_channels:
            raise ValueError("accept_channels must name at least one channel")
        return self
