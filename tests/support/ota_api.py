"""The control plane's app with releases attached, served over real HTTPS by uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from cityedge.cloud.api import ApiDeps, ApiServerConfig, create_app, uvicorn_config
from cityedge.cloud.api.ota_state import OtaState, attach_ota
from cityedge.cloud.auth.service import AuthService
from cityedge.cloud.registry import Registry
from cityedge.cloud.store import make_engine, upgrade
from cityedge.cloud.store.auth import AuthStore
from cityedge.cloud.store.registry import RegistryStore
from cityedge.cloud.store.releases import RolloutStore
from cityedge.pki import CaLayout, CertificateAuthority
from cityedge.sim.brokers import free_port


@dataclass
class Served:
    url: str
    cafile: Path
    auth: AuthService
    database: str


@contextmanager
def serve_ota(tmp: Path, repo_dir: Path, database: str | None = None) -> Iterator[Served]:
    database = database or f"sqlite:///{tmp / 'cloud.db'}"
    engine = make_engine(database)
    upgrade(engine)
    registry = Registry(RegistryStore(engine), CaLayout(tmp / "ca"))
    auth = AuthService(AuthStore(engine))
    app = attach_ota(create_app(ApiDeps(registry)), OtaState(repo_dir, auth, RolloutStore(engine)))
    ca = CertificateAuthority.create("ota test root", now=datetime.now(UTC))
    server = ca.issue_to_directory(
        "api", tmp / "api-tls", now=datetime.now(UTC), server_auth=True, extra_sans=("localhost", "127.0.0.1")
    )
    port = free_port()
    uv = uvicorn.Server(uvicorn_config(app, ApiServerConfig("127.0.0.1", port, server.cert_path,
                                                            server.key_path, server.ca_path)))  # fmt: skip
    thread = threading.Thread(target=uv.run, name="ota-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield Served(f"https://127.0.0.1:{port}", server.ca_path, auth, database)
    finally:
        uv.should_exit = True
        thread.join(10)
        engine.dispose()
