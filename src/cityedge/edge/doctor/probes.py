"""The node doctor's measurements: certificate files, the CRL, the broker (TCP, TLS handshake and
its timing), the control plane's clock, the outbox on disk and the running agent's metrics,
the disk, the cameras. Each returns plain facts for `checks.py` to judge."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import time
import urllib.request
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from cityedge.edge.config import EdgeConfig
from cityedge.edge.doctor.checks import BacklogFacts, CertFacts, CrlFacts
from cityedge.transport import TlsFiles, classify_tls_failure, client_tls_context

__all__ = [
    "agent_waiting",
    "broker_probe",
    "camera_error",
    "cert_facts",
    "crl_facts",
    "outbox_facts",
    "reference_skew",
    "retention_usage",
]


def _pems(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def cert_facts(tls: TlsFiles) -> CertFacts:
    try:
        cert = _pems(Path(tls.certfile))[0]
    except (OSError, ValueError, IndexError):
        return CertFacts(str(tls.certfile), None, False, "unreadable")
    ok, detail = _chain(cert, Path(tls.cafile))
    return CertFacts(str(tls.certfile), cert.not_valid_after_utc, ok, detail, cert.serial_number)


def _chain(cert: x509.Certificate, cafile: Path) -> tuple[bool, str]:
    try:
        cas = _pems(cafile)
    except (OSError, ValueError) as exc:
        return False, f"cafile {cafile} cannot be read: {exc}"
    issuer = next((ca for ca in cas if ca.subject == cert.issuer), None)
    if issuer is None:
        return False, f"its issuer {cert.issuer.rfc4514_string()} is not in {cafile}"
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        return False, f"its signature does not verify against {issuer.subject.rfc4514_string()}: {exc}"
    return True, "verifies"


def _fetch(source: str, cafile: Path | None, timeout: float = 5.0) -> tuple[bytes, dict[str, str]]:
    if not source.startswith(("http://", "https://")):
        return Path(source).read_bytes(), {}
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile is not None else None
    with urllib.request.urlopen(source, timeout=timeout, context=ctx) as response:  # noqa: S310 (http(s) only)
        return response.read(), dict(response.headers)


def crl_facts(source: str, serial: int | None, cafile: Path | None) -> CrlFacts:
    try:
        data, _ = _fetch(source, cafile)
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_crl(data)
        )
    except (OSError, ValueError) as exc:
        return CrlFacts(source, None, None, False, f"cannot be read: {exc}")
    revoked = serial is not None and crl.get_revoked_certificate_by_serial_number(serial) is not None
    return CrlFacts(source, crl.next_update_utc, crl.last_update_utc, revoked)


def broker_probe(
    host: str, port: int, tls: TlsFiles | None, tries: int = 5, timeout: float = 5.0
) -> tuple[str | None, str | None, str | None, list[float]]:
    """(error, TLS failure kind, hint, handshake times in ms). A handshake is the round trip that
    needs no MQTT session: connecting as the node would take over the running agent's session."""
    times: list[float] = []
    for _ in range(tries):
        try:
            times.append(_handshake(host, port, tls, timeout) * 1000)
        except OSError as exc:  # ssl.SSLError is an OSError
            text = str(exc) or type(exc).__name__
            tls_kind = classify_tls_failure(text)
            return text, tls_kind[0] if tls_kind else None, tls_kind[1] if tls_kind else None, times
    return None, None, None, times


def _handshake(host: str, port: int, tls: TlsFiles | None, timeout: float) -> float:
    """Seconds from connect to the end of the TLS handshake (TCP connect alone without TLS)."""
    ctx = client_tls_context(tls, "doctor") if tls is not None else None
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if ctx is None:
            return time.perf_counter() - started
        with ctx.wrap_socket(sock, server_hostname=host) as wrapped:
            took = time.perf_counter() - started
            # Under TLS 1.3 a refused client certificate arrives as an alert after the handshake.
            wrapped.settimeout(0.3)
            with contextlib.suppress(TimeoutError):
                wrapped.recv(1)
            return took


def reference_skew(url: str, cafile: Path | None, now: datetime) -> tuple[float | None, str]:
    """How far `now` (this node's clock) is ahead of the control plane's (HTTP Date, 1 s grain)."""
    started = time.monotonic()
    try:
        _, headers = _fetch(url, cafile)
    except OSError as exc:
        return None, f"{url}: {exc}"
    date = headers.get("date") or headers.get("Date")
    if not date:
        return None, f"{url} sent no Date header"
    there = parsedate_to_datetime(date).astimezone(UTC)
    half_trip = (time.monotonic() - started) / 2
    return (now - there).total_seconds() - half_trip - 0.5, url  # Date truncates to the second


def outbox_facts(config: EdgeConfig) -> BacklogFacts | None:
    from cityedge.edge.outbox import Outbox, OutboxLimits

    path = config.data_dir / "outbox.db"
    if not path.exists():
        return None
    o = config.outbox
    outbox = Outbox.open(
        path, limits=OutboxLimits(max_bytes=o.max_bytes, max_records=o.max_records, min_free_disk_bytes=0)
    )
    try:
        stats = outbox.stats()
    finally:
        outbox.close()
    ages = [s.oldest_age_s for s in stats.streams.values() if s.oldest_age_s is not None]
    return BacklogFacts(
        records=stats.total_records,
        bytes=stats.total_bytes,
        max_records=o.max_records,
        max_bytes=o.max_bytes,
        oldest_age_s=max(ages, default=0.0),
        drops={f"{s}/{r}": n for (s, r), n in stats.drops.items()},
        store_ack_timeout_s=config.uplink.store_ack_timeout_s,
    )


def agent_waiting(metrics_port: int | None) -> tuple[int, float] | None:
    """(records waiting for the store, oldest wait) from the running agent's /metrics."""
    if metrics_port is None:
        return None
    from prometheus_client.parser import text_string_to_metric_families

    try:
        data, _ = _fetch(f"http://127.0.0.1:{metrics_port}/metrics", None, timeout=2.0)
    except OSError:
        return None
    waiting, oldest = 0, 0.0
    for family in text_string_to_metric_families(data.decode()):
        for sample in family.samples:
            if sample.name == "cityedge_outbox_sent_records":
                waiting += int(sample.value)
            elif sample.name == "cityedge_outbox_oldest_sent_age_seconds":
                oldest = max(oldest, sample.value)
    return waiting, oldest


def retention_usage(retention: dict[str, object] | None) -> tuple[int, int] | None:
    if not retention or "root" not in retention:
        return None
    root = Path(str(retention["root"]))
    used = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    cap = retention.get("max_bytes", 50 * 2**30)
    return used, int(cap) if isinstance(cap, int | float | str) else 50 * 2**30


def disk(path: Path) -> tuple[int, int]:
    usage = shutil.disk_usage(path if path.exists() else path.parent)
    return usage.free, usage.total


def camera_error(url: str, timeout_s: float = 5.0) -> str | None:
    """None when one frame decodes from the camera's stream within the timeout."""
    try:
        import av
    except ImportError:
        return "PyAV is not installed (pip install 'cityedge[edge]')"
    try:
        with av.open(url, timeout=timeout_s) as container:
            for _frame in container.decode(video=0):
                return None
    except Exception as exc:  # PyAV raises its own tree per FFmpeg error; all mean "no frame"
        return f"{type(exc).__name__}: {exc}"
    return "the stream ended before a frame"
