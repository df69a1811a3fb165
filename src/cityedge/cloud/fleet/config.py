"""The fleet section of the control plane's config: heartbeat expectations and alert thresholds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AlertThresholds", "FleetSection"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertThresholds(_Strict):
    backlog_minutes: float = Field(
        10.0, gt=0, description="alert when a node's oldest outbox record is older than this (minutes)"
    )
    drops_window_s: float = Field(
        600.0, gt=0, description="alert when a node dropped records within this many seconds"
    )
    cert_days: float = Field(14.0, gt=0, description="alert when a certificate expires within this many days")
    fps_ratio: float = Field(
        0.9, gt=0, le=1, description="alert when a camera runs below this share of its frame-rate target"
    )
    latency_slo_ms: float = Field(
        100.0, gt=0, description="camera latency SLO (p95, capture to verdict); alert above it"
    )
    disk_free_ratio: float = Field(
        0.1, gt=0, lt=1, description="alert when a node's data disk has less than this share free"
    )

    @property
    def backlog_s(self) -> float:
        return self.backlog_minutes * 60


class FleetSection(_Strict):
    heartbeat_s: float = Field(
        15.0, gt=0, description="the heartbeat interval assumed for a node whose heartbeat does not say"
    )
    stale_after_missed: int = Field(2, ge=1, description="heartbeats missed before a node is stale")
    offline_after_missed: int = Field(4, ge=2, description="heartbeats missed before a node is offline")
    grace_s: float = Field(
        2.0, ge=0, description="slack on top of the missed intervals (transit and commit time)"
    )
    poll_s: float = Field(1.0, gt=0, description="how often the fleet monitor reads new heartbeats and wills")
    alerts_every_s: float = Field(5.0, gt=0, description="how often the alert rules are evaluated")
    alerts: AlertThresholds = Field(default_factory=AlertThresholds, description="alert thresholds")

    @model_validator(mode="after")
    def _offline_after_stale(self) -> FleetSection:
        if self.offline_after_missed <= self.stale_after_missed:
            raise ValueError("offline_after_missed must be greater than stale_after_missed")
        return self
