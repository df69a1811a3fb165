"""Run the control plane's API over real HTTPS (optional client certificates) in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from cityedge.cloud.api import ApiDeps, ApiServerConfig, create_app, uvicorn_config
from cityedge.cloud.registry import Registry
from cityedge.sim.brokers import free_port

OPERATOR_TOKEN = "operator-secret-for-tests"


@contextmanager
def serve_api(registry: Registry, workdir: Path) -> Iterator[str]:
    """Yield the base URL of a running API whose server certificate comes from the registry's CA."""
    ca = registry.ca
    server = ca.issue_to_directory(
        "api", workdir / "api-tls", now=datetime.now(UTC), server_auth=True,
        extra_sans=("localhost", "127.0.0.1"), chain=registry.layout.chain.read_bytes(),
    )  # fmt: skip
    port = free_port()
    cfg = ApiServerConfig("127.0.0.1", port, server.cert_path, server.key_path, registry.layout.chain)
    app = create_app(ApiDeps.with_tokens(registry, [OPERATOR_TOKEN]))
    uv = uvicorn.Server(uvicorn_config(app, cfg))
    thread = threading.Thread(target=uv.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)
