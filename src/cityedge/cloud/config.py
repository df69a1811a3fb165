"""The control plane's one typed config (YAML via the CLI, or its options); unknown keys refused.

`cityedge api serve`, `device revoke` and the `ca` commands read it. `cityedge district init`
writes one with absolute paths.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityedge.cloud.fleet.config import FleetSection

__all__ = ["ApiSection", "ControlPlaneConfig", "RevocationSection"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSection(_Strict):
    host: str = Field("0.0.0.0", description="address the API listens on")
    port: int = Field(8443, ge=1, le=65535, description="HTTPS port")
    certfile: Path | None = Field(
        None, description="the API's certificate (`ca issue --profile api`); required to serve"
    )
    keyfile: Path | None = Field(None, description="the API's key")
    operator_tokens_file: Path | None = Field(
        None, description="operator bearer tokens, one per line (or env CITYEDGE_OPERATOR_TOKENS=a,b)"
    )
    crl_check_s: float = Field(
        300.0, gt=0, description="how often the CRL's freshness is checked and, when due, re-published"
    )


class RevocationSection(_Strict):
    brokers: list[str] = Field(
        default_factory=list, description="host:port of each broker whose live sessions a revocation cuts"
    )
    certfile: Path | None = Field(
        None, description="the revoker's certificate (`ca issue --profile revoker`)"
    )
    keyfile: Path | None = Field(None, description="the revoker's key")
    broker_pid_file: Path | None = Field(
        None,
        description="the local broker's `pid_file`: SIGHUP loads a new CRL (null: reload it yourself)",
    )

    @field_validator("brokers")
    @classmethod
    def _host_port(cls, brokers: list[str]) -> list[str]:
        for item in brokers:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item!r} is not host:port (e.g. broker.d1.example:8883)")
        return brokers

    @model_validator(mode="after")
    def _revoker_identity(self) -> RevocationSection:
        if self.brokers and (self.certfile is None or self.keyfile is None):
            raise ValueError(
                "brokers need certfile and keyfile: the revoker's certificate (`ca issue --profile revoker`)"
            )
        return self


class ControlPlaneConfig(_Strict):
    database: str = Field(
        "sqlite:///cloud.db", description="the store: sqlite:///... or postgresql+psycopg://..."
    )
    ca_dir: Path = Field(Path("ca"), description="the issuing CA directory `cityedge ca init` made")
    device_cert_days: float = Field(
        90.0, gt=0, description="lifetime of device certificates issued at enrollment and renewal"
    )
    service_cert_days: float = Field(
        365.0, gt=0, description="default lifetime of `ca issue` / `ca renew` certificates"
    )
    crl_validity_days: float = Field(
        7.0, gt=0, description="validity of each published CRL; it is re-published at half of it"
    )
    releases_dir: Path | None = Field(
        None,
        description="the TUF release repository (`cityedge release keys` made it); null: no releases served",
    )
    api: ApiSection = Field(default_factory=ApiSection, description="the HTTPS API (`cityedge api serve`)")
    revocation: RevocationSection = Field(
        default_factory=RevocationSection, description="how a revocation reaches the brokers"
    )
    fleet: FleetSection = Field(
        default_factory=FleetSection, description="fleet health: heartbeat expectations and alert thresholds"
    )

    @property
    def device_lifetime(self) -> timedelta:
        return timedelta(days=self.device_cert_days)

    @property
    def service_lifetime(self) -> timedelta:
        return timedelta(days=self.service_cert_days)

    @property
    def crl_validity(self) -> timedelta:
        return timedelta(days=self.crl_validity_days)
