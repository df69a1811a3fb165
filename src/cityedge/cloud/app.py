"""Composition root of the control plane: builds the store engine, the registry over the CA
directory, the revoker, the CRL refresher and the API app once, from one config.

Commands ask this module for the parts they need and nothing else wires them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from cityedge.cloud.clock import utcnow
from cityedge.cloud.config import ControlPlaneConfig
from cityedge.cloud.registry import Registry
from cityedge.cloud.registry.broker import DynsecEndpoint, DynsecRevoker, pid_file_reload
from cityedge.cloud.registry.refresher import CrlRefresher
from cityedge.cloud.registry.services import ServiceFiles, issue_service, renew_service
from cityedge.cloud.store import make_engine, upgrade
from cityedge.cloud.store.engine import safe_url
from cityedge.cloud.store.registry import RegistryStore
from cityedge.pki import CaLayout
from cityedge.protocol.errors import CityEdgeError, ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from cityedge.cloud.api import ApiServerConfig
    from cityedge.cloud.fleet.monitor import FleetMonitor

__all__ = ["ControlPlane", "read_operator_tokens"]

log = logging.getLogger(__name__)


@dataclass
class ControlPlane:
    """The control plane's parts, built once. `close()` releases the database."""

    config: ControlPlaneConfig
    engine: Engine
    registry: Registry
    revoker: DynsecRevoker | None
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def build(cls, config: ControlPlaneConfig, *, clock: Callable[[], datetime] = utcnow) -> ControlPlane:
        engine = make_engine(config.database)
        upgrade(engine)
        revoker = _revoker(config)
        registry = Registry(
            RegistryStore(engine),
            CaLayout(config.ca_dir.absolute()),
            lifetime=config.device_lifetime,
            crl_validity=config.crl_validity,
            on_revoked=revoker,
        )
        return cls(config, engine, registry, revoker, clock)

    @property
    def store_url(self) -> str:
        return safe_url(self.engine.url)

    def crl_refresher(self) -> CrlRefresher:
        reload = self.revoker.reload if self.revoker is not None else None
        return CrlRefresher(self.registry, self.clock, every_s=self.config.api.crl_check_s, reload=reload)

    def api_app(self, operator_tokens: Iterable[str], monitor: FleetMonitor | None = None) -> FastAPI:
        """The API with every router and the dashboard; releases, rollouts and the TUF repository
        when configured; the fleet monitor's metrics on /metrics when `monitor` is given."""
        from cityedge.cloud.api import ApiDeps, create_app
        from cityedge.cloud.api.fleet_deps import FleetDeps, attach_fleet
        from cityedge.cloud.api.ota_state import OtaState, attach_ota
        from cityedge.cloud.auth.service import AuthService
        from cityedge.cloud.store.auth import AuthStore
        from cityedge.cloud.store.fleet import FleetStore
        from cityedge.cloud.store.releases import RolloutStore
        from cityedge.cloud.web.routes import router as dashboard

        deps = ApiDeps.with_tokens(self.registry, operator_tokens, clock=self.clock)
        deps.auth = AuthService(AuthStore(self.engine), self.clock, deps.operator_token_hashes)
        app = create_app(deps)
        attach_fleet(app, FleetDeps(FleetStore(self.engine), monitor, self.config.fleet))
        app.include_router(dashboard)
        if self.config.releases_dir is not None:
            attach_ota(
                app, OtaState(self.config.releases_dir, deps.auth, RolloutStore(self.engine), self.clock)
            )
        return app

    def api_server_config(self) -> ApiServerConfig:
        from cityedge.cloud.api import ApiServerConfig

        api = self.config.api
        if api.certfile is None or api.keyfile is None:
            raise ConfigError(
                "api: certfile and keyfile are required to serve HTTPS "
                "(`cityedge ca issue --profile api api --san HOST --out DIR` makes them)"
            )
        return ApiServerConfig(api.host, api.port, api.certfile, api.keyfile, self.registry.layout.chain)

    def serve_api(self, operator_tokens: Iterable[str], on_started: Callable[[str], None]) -> None:
        """Serve the API until SIGINT/SIGTERM, keeping the CRL fresh meanwhile."""
        from cityedge.cloud.api.server import ApiServer, bind, uvicorn_config

        server_cfg = self.api_server_config()
        monitor = self.fleet_monitor()
        config = uvicorn_config(self.api_app(operator_tokens, monitor), server_cfg)
        sock = bind(server_cfg.host, server_cfg.port)
        refresher = self.crl_refresher().start()
        monitor.start()
        try:
            ApiServer(config, on_started=lambda: on_started(server_cfg.url)).run(sockets=[sock])
        finally:
            monitor.stop()
            refresher.stop()
            sock.close()

    def fleet_monitor(self) -> FleetMonitor:
        """Node status from what ingest stores, and the alert rules (one per district store)."""
        from cityedge.cloud.fleet.monitor import FleetMonitor
        from cityedge.cloud.store.fleet import FleetStore

        def crl_stale(now: datetime) -> bool | None:
            try:
                return bool(self.registry.ca_status(now)["crl"]["alert"])
            except CityEdgeError:  # no CA here (a pilot without one): the CRL is not judged
                return None

        return FleetMonitor(FleetStore(self.engine), self.config.fleet, clock=self.clock, crl_stale=crl_stale)

    def issue_service(
        self, profile: str, name: str, sans: tuple[str, ...], out: Path, *, days: float | None = None,
        csr: Path | None = None,
    ) -> ServiceFiles:  # fmt: skip
        """A service certificate into `out` (lifetime `days`, else service_cert_days)."""
        csr_pem = _read(csr, "--csr") if csr is not None else None
        return issue_service(
            self.registry,
            profile,
            name,
            sans,
            out,
            now=self.clock(),
            lifetime=self._lifetime(days),
            csr_pem=csr_pem,
        )

    def renew_service(self, cert: Path, *, days: float | None = None) -> ServiceFiles:
        return renew_service(self.registry, cert, now=self.clock(), lifetime=self._lifetime(days))

    def _lifetime(self, days: float | None) -> timedelta:
        return timedelta(days=days) if days is not None else self.config.service_lifetime

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None


def _revoker(config: ControlPlaneConfig) -> DynsecRevoker | None:
    """Reload (SIGHUP the local broker) and kick through each broker's revocation plugin."""
    rev = config.revocation
    reload = pid_file_reload(rev.broker_pid_file) if rev.broker_pid_file is not None else None
    if not rev.brokers and reload is None:
        return None
    chain = CaLayout(config.ca_dir.absolute()).chain
    endpoints = []
    for item in rev.brokers:
        host, _, port = item.rpartition(":")
        assert rev.certfile is not None and rev.keyfile is not None  # the config checked
        endpoints.append(DynsecEndpoint(host, int(port), chain, rev.certfile, rev.keyfile))
    return DynsecRevoker(endpoints, reload=reload)


def read_operator_tokens(config: ControlPlaneConfig, from_env: str | None) -> list[str]:
    """Operator bearer tokens: the comma-separated `from_env`, or one per line of the tokens file."""
    text = from_env or ""
    path = config.api.operator_tokens_file
    if not text and path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"api.operator_tokens_file {path}: {exc.strerror}") from None
    tokens = [t.strip() for t in text.replace(",", "\n").splitlines() if t.strip()]
    if not tokens:
        raise ConfigError(
            "no operator token: set api.operator_tokens_file (one token per line) or CITYEDGE_OPERATOR_TOKENS"
        )
    return tokens
