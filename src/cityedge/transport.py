"""What the node's and the cloud's network clients share: TLS client files and context, and
the reconnect delay (exponential backoff with full jitter).

Edge and cloud packages do not import each other; both import this.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cityedge.protocol.errors import ConfigError

__all__ = ["TlsFiles", "client_tls_context", "full_jitter_delay"]


class TlsFiles(BaseModel):
    """A client certificate, its key, and the CA bundle that must have signed the server's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cafile: Path
    certfile: Path
    keyfile: Path


def client_tls_context(tls: TlsFiles, who: str = "tls") -> ssl.SSLContext:
    """Verify the server against our CA, present our certificate, TLS 1.2 or newer."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.cafile))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(tls.certfile), str(tls.keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{who}: cannot load cafile={tls.cafile}, certfile={tls.certfile}, keyfile={tls.keyfile}: {exc}"
        ) from None
    return ctx


def full_jitter_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """Delay before retry number `attempt` (0-based): uniform in [0, min(cap, base * 2**attempt)]
    for `rand` uniform in [0, 1). Full jitter spreads a district's nodes apart after a shared
    outage instead of having them reconnect in step."""
    ceiling = min(cap, base * float(2 ** min(attempt, 62)))
    return float(ceiling * rand)
