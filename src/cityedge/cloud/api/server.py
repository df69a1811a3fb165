"""Serve the API over HTTPS where a client certificate is optional (enroll) or used (renew).

Uvicorn does not put the peer certificate in the ASGI scope, so a thin H11 protocol adds the
ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`) per connection; the
handshake has completed, and the certificate chain verified, before `connection_made`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from cityedge.protocol.errors import ConfigError

__all__ = ["ApiServer", "ApiServerConfig", "MtlsH11Protocol", "bind", "uvicorn_config"]


class MtlsH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            self.app = _with_tls(self.app, ssl.DER_cert_to_PEM_cert(der), ssl_object.version())


def _with_tls(app: Any, pem: str, version: str | None) -> Any:
    async def with_tls(scope: Any, receive: Any, send: Any) -> None:
        tls = {
            "client_cert_chain": [pem],
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": version,
        }
        scope.setdefault("extensions", {})["tls"] = tls
        await app(scope, receive, send)

    return with_tls


@dataclass(frozen=True)
class ApiServerConfig:
    host: str
    port: int
    certfile: Path
    keyfile: Path
    client_cafile: Path  # the chain that device certificates verify against

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"


def uvicorn_config(app: Any, cfg: ApiServerConfig) -> uvicorn.Config:
    for what, path in (("certificate", cfg.certfile), ("key", cfg.keyfile), ("CA chain", cfg.client_cafile)):
        if not path.is_file():
            raise ConfigError(f"api: the server {what} {path} does not exist")
    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        http=MtlsH11Protocol,
        ssl_certfile=str(cfg.certfile),
        ssl_keyfile=str(cfg.keyfile),
        ssl_ca_certs=str(cfg.client_cafile),
        ssl_cert_reqs=ssl.CERT_OPTIONAL,
        log_level="warning",
        lifespan="off",
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a sentence that says why the port cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = (
            " (another process listens there: stop it or choose another --port)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise ConfigError(f"api: cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.listen(128)
    return sock


class ApiServer(uvicorn.Server):
    """Uvicorn on a socket bound up front; `on_started` runs once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started()
