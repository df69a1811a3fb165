"""TLS for every MQTT client cityedge runs: the client files, the context, and what a failed
handshake means in an operator's words (revoked, expired, unknown CA, broker not trusted)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cityedge.protocol.errors import ConfigError

__all__ = ["TlsFailure", "TlsFiles", "certificate_not_after", "classify_tls_failure", "client_tls_context"]

TlsFailure = Literal["revoked", "expired", "unknown_ca", "server_untrusted", "handshake"]

_HINTS: dict[TlsFailure, str] = {
    "revoked": "the broker refused our certificate as revoked: re-enroll this device (cityedge enroll)",
    "expired": "a certificate in the handshake has expired: renew or re-enroll this device",
    "unknown_ca": "the broker does not know the CA that signed our certificate: check the district CA",
    "server_untrusted": "the broker's certificate is not signed by our CA file (cafile): check the chain",
    "handshake": "the TLS handshake failed",
}


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


def classify_tls_failure(text: str) -> tuple[TlsFailure, str] | None:
    """What an SSL error (or paho's log of one) says, with a hint; None when it is not TLS."""
    upper = text.upper()
    if "REVOKED" in upper:
        kind: TlsFailure = "revoked"
    elif "EXPIRED" in upper:
        kind = "expired"
    elif "UNKNOWN_CA" in upper or "UNKNOWN CA" in upper:
        kind = "unknown_ca"
    elif "CERTIFICATE_VERIFY_FAILED" in upper:
        kind = "server_untrusted"
    elif any(word in upper for word in ("ALERT", "HANDSHAKE_FAILURE", "WRONG_VERSION", "NO_PROTOCOLS")):
        kind = "handshake"
    else:  # an EOF or a reset mid-handshake is a link that dropped, not a TLS refusal
        return None
    return kind, _HINTS[kind]


def certificate_not_after(certfile: Path) -> datetime | None:
    """When our own certificate stops being valid (None when it cannot be read)."""
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    except (OSError, ValueError):
        return None
    return cert.not_valid_after_utc.astimezone(UTC)
