"""Serve the API over HTTPS where a client certificate is optional (enroll) or used (renew).

Uvicorn does not put the peer certificate in the ASGI scope, so a thin H11 protocol adds the
ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`) per connection; the
handshake has completed, and the certificate chain verified, before `connection_made`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ApiServerConfig", "MtlsH11Protocol", "uvicorn_config"]


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


def uvicorn_config(app: Any, cfg: ApiServerConfig) -> uvicorn.Config:
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
