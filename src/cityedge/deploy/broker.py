"""Render a locked-down Mosquitto that starts as it is: checked inputs, absolute paths, a data
directory, and files its own user can read (or the exact commands to make them so).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from cityedge.deploy.access import Fix, ServiceUser, apply, plan_access
from cityedge.deploy.mosquitto import (
    BrokerInputs,
    Role,
    broker_profile,
    default_services,
    render_mosquitto_conf,
    write_broker_files,
)
from cityedge.pki import load_certificate, load_crl, load_private_key
from cityedge.protocol.errors import ConfigError

__all__ = ["BrokerInputs", "RenderedBroker", "check_broker_inputs", "render_broker"]


@dataclass(frozen=True)
class RenderedBroker:
    conf: Path
    acl: Path
    data_dir: Path
    pid_file: Path
    user: str | None
    applied: list[Fix] = field(default_factory=list)
    pending: list[Fix] = field(default_factory=list)  # commands the operator must run as root

    def as_dict(self) -> dict[str, object]:
        return {
            "conf": str(self.conf), "acl": str(self.acl), "data_dir": str(self.data_dir),
            "pid_file": str(self.pid_file), "user": self.user,
            "changed": [f"{f.command}  # {f.why}" for f in self.applied],
            "run_as_root": [f.command for f in self.pending],
        }  # fmt: skip


def check_broker_inputs(files: BrokerInputs) -> None:
    """Every input exists and is what it claims; the broker certificate can serve TLS."""
    named = (("--chain", files.chain), ("--cert", files.cert), ("--key", files.key), ("--crl", files.crl))
    for option, path in named:
        if not path.is_file():
            raise ConfigError(f"{option} {path} does not exist (absolute: {path.absolute()})")
    load_certificate(files.chain)
    load_crl(files.crl)
    cert, key = load_certificate(files.cert), load_private_key(files.key)
    if cert.public_key() != key.public_key():
        raise ConfigError(f"--key {files.key} is not the key of --cert {files.cert}")
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.SERVER_AUTH not in usages:
        raise ConfigError(
            f"--cert {files.cert} cannot serve TLS (no serverAuth usage); issue one with "
            "`cityedge ca issue --profile broker NAME --san HOST`"
        )


def render_broker(
    role: Role,
    out: Path,
    files: BrokerInputs,
    *,
    district: str,
    port: int,
    bind: str = "0.0.0.0",
    node: str | None = None,
    user: str | None = "mosquitto",
    ingest: Sequence[str] = ("ingest",),
) -> RenderedBroker:
    """Write mosquitto.conf, acl.conf and data/ (with the plugin's JSON) under `out`."""
    check_broker_inputs(files)
    cfg = broker_profile(out, files, port=port, bind=bind, user=user)
    services = default_services(role, district, ingest)
    write_broker_files(cfg, role, district, services=services, node=node)
    conf = cfg.data_dir.parent / "mosquitto.conf"
    conf.write_text(render_mosquitto_conf(cfg))
    assert cfg.acl_file is not None and cfg.pid_file is not None
    applied, pending = _give_access(user, cfg.data_dir, files, conf, cfg.acl_file)
    return RenderedBroker(conf, cfg.acl_file, cfg.data_dir, cfg.pid_file, user, applied, pending)


def _give_access(
    user: str | None, data_dir: Path, files: BrokerInputs, conf: Path, acl: Path
) -> tuple[list[Fix], list[Fix]]:
    # Mosquitto switches user only when started as root; started as anyone else it stays them.
    if user is None or (os.geteuid() != 0 and user == getpass.getuser()):
        return [], []
    reads = [conf, acl, files.chain, files.cert, files.crl]
    return apply(plan_access(ServiceUser.named(user), reads=reads, owns=[data_dir, files.key.absolute()]))
