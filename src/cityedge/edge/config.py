"""The edge agent's one typed config (YAML), validated at start-up, unknown keys rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityedge.protocol.envelope import NAME_PATTERN
from cityedge.protocol.errors import ConfigError
from cityedge.transport.tls import TlsFiles

__all__ = [
    "BrokerEndpoint",
    "CameraWorkersConfig",
    "EdgeConfig",
    "HealthConfig",
    "HeartbeatConfig",
    "IdentityConfig",
    "LocalBusConfig",
    "OutboxConfig",
    "StreamPolicyConfig",
    "SyntheticConfig",
    "TlsFiles",
    "UplinkConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerEndpoint(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    tls: TlsFiles | None = None
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    keepalive_s: int = Field(30, ge=5)


class UplinkConfig(BrokerEndpoint):
    batch_max_records: int = Field(500, ge=1)
    batch_max_bytes: int = Field(128 * 1024, ge=1024)
    linger_ms: float = Field(5.0, ge=0)
    inflight_window: int = Field(16, ge=1)
    drain_records_per_s: float = Field(50_000, gt=0)
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_cap_s: float = Field(60.0, gt=0)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    store_ack_timeout_s: float = Field(
        30.0,
        gt=0,
        description="how long a record the broker took waits for the cloud store's acknowledgement before "
        "it is sent again (the wait doubles for each timeout in a row, jittered)",
    )
    store_ack_timeout_cap_s: float = Field(
        600.0, gt=0, description="the longest that wait grows to while the store stays silent"
    )

    @model_validator(mode="after")
    def _caps_not_below_bases(self) -> UplinkConfig:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError(
                f"backoff_cap_s ({self.backoff_cap_s}) must be >= backoff_base_s ({self.backoff_base_s})"
            )
        if self.store_ack_timeout_cap_s < self.store_ack_timeout_s:
            raise ValueError(
                f"store_ack_timeout_cap_s ({self.store_ack_timeout_cap_s}) must be >= store_ack_timeout_s"
                f" ({self.store_ack_timeout_s})"
            )
        return self


class LocalBusConfig(BrokerEndpoint):
    # MQTT 3.1.1 by default on the node's own broker: nothing here needs MQTT 5, and paho
    # builds a properties object for every MQTT 5 message it receives (a fifth of the agent's
    # CPU under a busy sensor load).
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "3.1.1", description="MQTT version on the node's broker: 3.1.1 (cheapest), 5, or auto"
    )
    client_id: str = "cityedge-agent"
    sensor_filter: str = "ce/local/v1/sensors/+/+"
    require_sensor_id: bool = Field(
        False,
        description="refuse (quarantine, reason no_id) sensor messages without an id; otherwise the node "
        "gives them one, and a resend of such a message is stored twice (docs/sensors.md)",
    )
    backoff_cap_s: float = Field(
        10.0, gt=0, description="the longest wait between attempts to reach the node's broker"
    )


class StreamPolicyConfig(_Strict):
    priority: int = Field(ge=1, le=100)
    when_full: Literal["drop_oldest", "reject_new"]
    ttl_s: float | None = Field(None, gt=0)


class OutboxConfig(_Strict):
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    max_records: int = Field(1_000_000, ge=1)
    min_free_disk_bytes: int = Field(512 * 1024 * 1024, ge=0)
    streams: dict[str, StreamPolicyConfig] = {}


class SyntheticConfig(_Strict):
    """Synthetic producers for pilots and tests: telemetry at a rate, incidents now and then."""

    telemetry_per_s: float = Field(20.0, ge=0)
    incidents_per_min: float = Field(6.0, ge=0)
    limit: int | None = Field(None, ge=0, description="stop after this many records in total")


class IdentityConfig(_Strict):
    """The node's own certificate, renewed over mTLS by the control plane's API.

    `credentials_dir` is what `cityedge enroll` wrote: `current/device.{crt,key}` and
    `chain.pem`. When set, the uplink uses these files (its own `tls` must then be unset).
    """

    api_url: str
    credentials_dir: Path


class HeartbeatConfig(_Strict):
    interval_s: float = Field(15.0, gt=0)


class CameraWorkersConfig(_Strict):
    """Where the cameras run: in the agent's own process, or spread over worker processes
    (each its own Python interpreter, so the GIL of one process does not cap the box)."""

    processes: int | Literal["auto"] = Field(
        "auto",
        description="worker processes for the cameras: 0 runs every camera in the agent's own process; "
        "`auto` does that while the cameras fit in one group (`cameras_per_process`), else one process "
        "per group; decisions and records come back to the agent, which alone writes the outbox",
    )
    cameras_per_process: int = Field(
        8, ge=1, le=64, description="`auto`: cameras per worker process at most (and the most run in-process)"
    )

    @model_validator(mode="after")
    def _not_negative(self) -> CameraWorkersConfig:
        if self.processes != "auto" and self.processes < 0:
            raise ValueError("processes must be `auto` or a number >= 0 (0: in the agent's process)")
        return self


class HealthConfig(_Strict):
    """The agent's health endpoint: `/healthz`, `/readyz` and `/metrics` on one port."""

    host: str = Field(
        "127.0.0.1",
        description="address the endpoint listens on (0.0.0.0 in a pod: the kubelet probes the pod IP)",
    )
    port: int = Field(8081, ge=0, le=65535, description="port of `/healthz`, `/readyz` and `/metrics`")
    uplink_grace_s: float = Field(
        120.0,
        gt=0,
        description="a disconnected uplink still counts as ready this long (it is reconnecting with backoff);"
        " after that `/readyz` fails, so a rollout stops at a node that cannot deliver",
    )


def _tls_of(bus: LocalBusConfig | None) -> TlsFiles | None:
    return bus.tls if bus is not None else None


class EdgeConfig(_Strict):
    node_id: str = Field(pattern=NAME_PATTERN)
    district: str = Field(pattern=NAME_PATTERN)
    data_dir: Path
    uplink: UplinkConfig
    outbox: OutboxConfig = OutboxConfig()
    local_bus: LocalBusConfig | None = None
    synthetic: SyntheticConfig | None = None
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    identity: IdentityConfig | None = None
    # Camera and retention sections are validated by the camera package when the agent starts
    # (so a node without cameras needs neither numpy nor OpenCV); errors name the camera.
    cameras: list[dict[str, Any]] = []
    retention: dict[str, Any] | None = None
    camera_workers: CameraWorkersConfig = Field(
        CameraWorkersConfig(), description="whether the cameras run in worker processes, and how many"
    )
    metrics_port: int | None = Field(None, ge=0, le=65535)
    health: HealthConfig | None = Field(
        None, description="liveness and readiness probes (and metrics) over HTTP; null: none"
    )
    agent_version: str = "0.1.0"
    # OTA install reports spooled by `cityedge ota supervise` (default: data_dir/ota/reports)
    ota_spool: Path | None = None

    @model_validator(mode="after")
    def _one_source_of_uplink_credentials(self) -> EdgeConfig:
        if self.identity is not None and self.uplink.tls is not None:
            raise ValueError("set either identity (renewed certificates) or uplink.tls, not both")
        return self

    def check_files(self) -> None:
        """Refuse at start, with a sentence, a certificate file that is not there (instead of a
        connection that fails minutes later in a background thread)."""
        for section, tls in (("uplink", self.uplink_tls()), ("local_bus", _tls_of(self.local_bus))):
            for key in ("cafile", "certfile", "keyfile"):
                path = getattr(tls, key) if tls is not None else None
                if path is not None and not Path(path).is_file():
                    hint = " (run `cityedge enroll` first)" if self.identity is not None else ""
                    raise ConfigError(f"node {self.node_id}: {section} {key} {path} does not exist{hint}")

    def uplink_tls(self) -> TlsFiles | None:
        """The uplink's TLS files: the renewed identity's when there is one."""
        if self.identity is None:
            return self.uplink.tls
        d = self.identity.credentials_dir
        return TlsFiles(
            cafile=d / "chain.pem",
            certfile=d / "current" / "device.crt",
            keyfile=d / "current" / "device.key",
        )
