"""Mosquitto configuration rendering for the cloud broker and the node-local broker.

Every TLS listener requires a client certificate from our CA, TLS 1.2 or newer, and uses
the certificate's CN as the MQTT username so ACLs can bind a device to its own topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MosquittoConfig", "render_mosquitto_conf"]


@dataclass(frozen=True)
class MosquittoConfig:
    """What a broker needs: where to listen, its TLS files, where to persist sessions."""

    data_dir: Path
    tls_port: int | None = None
    plain_port: int | None = None
    plain_bind: str = "127.0.0.1"
    tls_bind: str = "127.0.0.1"
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    crlfile: Path | None = None
    acl_file: Path | None = None
    tls_version: str = "tlsv1.2"
    max_inflight: int = 100
    max_queued: int = 100_000
    extra_lines: tuple[str, ...] = field(default=())


def render_mosquitto_conf(cfg: MosquittoConfig) -> str:
    lines = [
        "# rendered by cityedge; edit the inputs, not this file",
        "per_listener_settings false",
        "persistence true",
        f"persistence_location {cfg.data_dir}/",
        "autosave_interval 1",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        f"max_inflight_messages {cfg.max_inflight}",
        f"max_queued_messages {cfg.max_queued}",
        "max_queued_bytes 0",
        "persistent_client_expiration 14d",
        "allow_anonymous false"
        if cfg.tls_port is not None and cfg.plain_port is None
        else "allow_anonymous true",
    ]
    if cfg.plain_port is not None:
        lines += [f"listener {cfg.plain_port} {cfg.plain_bind}", "protocol mqtt"]
    if cfg.tls_port is not None:
        if not (cfg.cafile and cfg.certfile and cfg.keyfile):
            raise ValueError("a TLS listener needs cafile, certfile and keyfile")
        lines += [
            f"listener {cfg.tls_port} {cfg.tls_bind}",
            "protocol mqtt",
            f"cafile {cfg.cafile}",
            f"certfile {cfg.certfile}",
            f"keyfile {cfg.keyfile}",
            f"tls_version {cfg.tls_version}",
            "require_certificate true",
            "use_identity_as_username true",
        ]
        if cfg.crlfile is not None:
            lines.append(f"crlfile {cfg.crlfile}")
    if cfg.acl_file is not None:
        lines.append(f"acl_file {cfg.acl_file}")
    lines += list(cfg.extra_lines)
    return "\n".join(lines) + "\n"
