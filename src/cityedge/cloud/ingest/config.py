"""The ingest process's one typed config (YAML via the CLI); unknown keys are rejected.

Only the CLI reads the environment: the fault-injection switch arrives here as `fault`.
"""

from __future__ import annotations

import re
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityedge.transport.tls import TlsFiles

__all__ = ["FAULTS", "IngestConfig", "default_client_id"]

FAULTS = ("ingest_exit_after_commit",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def default_client_id() -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-") or "host"
    return f"ingest-{host}"[:63]


class IngestConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    tls: TlsFiles | None = None  # None: plain TCP (local development only)
    # Stable across restarts: the broker keeps the persistent session (and what it has not
    # seen acknowledged) under this id.
    client_id: str = Field(default_factory=default_client_id, min_length=1, max_length=128)
    # MQTT 5 shared subscription group; None for brokers without it (e.g. amqtt).
    # None (the default): one ingest replica on a plain persistent subscription. A share group
    # lets several replicas split the traffic, but Mosquitto 2.0.11 loses messages queued for
    # a shared-subscription member that had unacknowledged messages when the broker restarted
    # (tests/integration/test_data_plane.py shows it); see docs/architecture.md.
    share_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$")
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    database: str = "sqlite:///cityedge-cloud.db"
    max_payload_bytes: int = Field(256 * 1024, ge=1024)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    keepalive_s: int = Field(30, ge=5)
    # A connection whose CONNACK does not come within this is dropped and tried again.
    connect_timeout_s: float = Field(5.0, gt=0)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    # Reconnect backoff (full jitter): a random delay in [0, min(cap, base * 2**attempt)].
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_cap_s: float = Field(30.0, gt=0)
    # Store retry backoff (full jitter), while the database is unavailable.
    store_retry_base_s: float = Field(0.1, gt=0)
    store_retry_cap_s: float = Field(5.0, gt=0)
    # Messages taken from the broker and committed in one transaction, at most.
    max_group_messages: int = Field(64, ge=1)
    fault: Literal["ingest_exit_after_commit"] | None = None

    @model_validator(mode="after")
    def _caps_not_below_bases(self) -> IngestConfig:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be >= backoff_base_s")
        if self.store_retry_cap_s < self.store_retry_base_s:
            raise ValueError("store_retry_cap_s must be >= store_retry_base_s")
        return self
