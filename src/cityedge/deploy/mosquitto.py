"""Mosquitto configuration rendering for the cloud broker and the node-local broker.

Every TLS listener requires a client certificate from our CA, TLS 1.2 or newer, and uses
the certificate's CN as the MQTT username so ACLs can bind a device to its own topics.
`lockdown` adds the rest of the identity story: client id forced to the CN, the CRL, an
ACL file, and the dynamic-security plugin used only to cut a revoked device's connection.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cityedge.pki.profile import check_device_id
from cityedge.protocol.errors import ConfigError
from cityedge.protocol.topics import LOCAL_ROOT, ROOT

__all__ = [
    "DYNSEC_PLUGIN",
    "REVOKER",
    "BrokerInputs",
    "MosquittoConfig",
    "Role",
    "ServiceAcl",
    "broker_profile",
    "default_services",
    "dynsec_bootstrap",
    "lockdown",
    "render_acl",
    "render_mosquitto_conf",
    "write_broker_files",
]

DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
Role = Literal["cloud", "local"]


def _current_user() -> str:
    # Mosquitto started as root drops to user "mosquitto", which cannot read our 0600 keys.
    return getpass.getuser()


@dataclass(frozen=True)
class BrokerInputs:
    """The files a broker needs from the district CA, as the operator named them."""

    chain: Path
    cert: Path
    key: Path
    crl: Path


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
    user: str | None = field(default_factory=_current_user)
    clientid_from_identity: bool = False
    dynsec_plugin: Path | None = None
    dynsec_config: Path | None = None
    pid_file: Path | None = None


def render_mosquitto_conf(cfg: MosquittoConfig) -> str:
    lines = [
        "# rendered by cityedge; edit the inputs, not this file",
        "per_listener_settings false",
        *([f"user {cfg.user}"] if cfg.user else []),
        *([f"pid_file {cfg.pid_file}"] if cfg.pid_file else []),
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
        # Small packets go out at once: records one way and the store's acknowledgements the
        # other make Nagle's algorithm wait on delayed ACKs (tens of ms) otherwise.
        "set_tcp_nodelay true",
        "persistent_client_expiration 14d",
        "allow_anonymous false"
        if cfg.tls_port is not None and cfg.plain_port is None
        else "allow_anonymous true",
    ]
    if cfg.acl_file is not None:
        lines.append(f"acl_file {cfg.acl_file}")
    if cfg.dynsec_plugin is not None:
        if cfg.dynsec_config is None:
            raise ConfigError("the dynamic-security plugin needs dynsec_config (its JSON file)")
        lines += [f"plugin {cfg.dynsec_plugin}", f"plugin_opt_config_file {cfg.dynsec_config}"]
    if cfg.plain_port is not None:
        lines += [f"listener {cfg.plain_port} {cfg.plain_bind}", "protocol mqtt"]
    if cfg.tls_port is not None:
        lines += _tls_listener(cfg)
    lines += list(cfg.extra_lines)
    return "\n".join(lines) + "\n"


def _tls_listener(cfg: MosquittoConfig) -> list[str]:
    if not (cfg.cafile and cfg.certfile and cfg.keyfile):
        raise ConfigError("a TLS listener needs cafile, certfile and keyfile")
    lines = [
        f"listener {cfg.tls_port} {cfg.tls_bind}",
        "protocol mqtt",
        f"cafile {cfg.cafile}",
        f"certfile {cfg.certfile}",
        f"keyfile {cfg.keyfile}",
        f"tls_version {cfg.tls_version}",
        "require_certificate true",
        "use_identity_as_username true",
    ]
    if cfg.clientid_from_identity:
        # The client id becomes the CN, so device A can only ever take over its own session.
        lines.append("use_username_as_clientid true")
    if cfg.crlfile is not None:
        lines.append(f"crlfile {cfg.crlfile}")
    return lines


@dataclass(frozen=True)
class ServiceAcl:
    """A service identity (certificate CN) and the topic filters it may read and write."""

    name: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


REVOKER = "revoker"


def default_services(
    role: Role, district: str, ingest: Sequence[str] = ("ingest",)
) -> tuple[ServiceAcl, ...]:
    """Ingest reads up-traffic and acknowledges what it stored, the control plane writes down/,
    the revoker kicks sessions.

    Each service is one certificate and, with the client id forced to the CN, one session:
    every ingest replica needs its own identity (`ingest`, `ingest-2`, ...), listed in `ingest`.
    """
    control = "$CONTROL/dynamic-security/#"
    revoker = ServiceAcl(REVOKER, read=(control,), write=(control,))
    if role == "local":
        return (revoker,)
    replicas = tuple(
        ServiceAcl(name, read=(f"{ROOT}/{district}/+/up/+",), write=(f"{ROOT}/{district}/+/down/ack",))
        for name in dict.fromkeys(ingest)
    )
    return (
        *replicas,
        ServiceAcl(
            "control-plane",
            read=(f"{ROOT}/{district}/+/up/heartbeat",),
            write=(f"{ROOT}/{district}/+/down/+",),
        ),
        revoker,
    )


def render_acl(role: Role, district: str, services: Sequence[ServiceAcl], *, node: str | None = None) -> str:
    """The ACL file: services by name, then patterns that bind every device to its own topics.

    Patterns end in `+`, not `#`: a CN holding '/' then expands to a filter deeper than the
    six-level topic tree and can never match another device's topics.
    """
    check_device_id(district, where="district")
    lines = ["# rendered by cityedge; %u is the client certificate's CN"]
    for svc in services:
        check_device_id(svc.name, where="service identity")
        lines += ["", f"user {svc.name}"]
        lines += [f"topic read {t}" for t in svc.read] + [f"topic write {t}" for t in svc.write]
    if role == "local":
        if node is None:
            raise ConfigError("a local broker's ACL needs the node id (its edge agent's identity)")
        lines += ["", f"user {check_device_id(node, where='node')}", f"topic readwrite {LOCAL_ROOT}/#"]
        lines += ["", "# sensors publish their own readings and read their own confirmations;"]
        lines += ["# actuators read decisions"]
        lines += [
            f"pattern write {LOCAL_ROOT}/sensors/%u/+",
            f"pattern read {LOCAL_ROOT}/acks/%u",
            f"pattern read {LOCAL_ROOT}/decisions/+",
        ]
    else:
        lines += ["", "# devices: publish only to their own up/, read only their own down/"]
        lines += [f"pattern write {ROOT}/{district}/%u/up/+", f"pattern read {ROOT}/{district}/%u/down/+"]
    return "\n".join(lines) + "\n"


def dynsec_bootstrap(admin: str = REVOKER) -> dict[str, object]:
    """The plugin's first JSON: one admin that may only kick clients; no default access.

    The ACL file decides topic access; this plugin exists so revocation can disconnect a
    live session (Mosquitto 2.0 checks the CRL only at handshake).
    """
    control = "$CONTROL/dynamic-security/#"
    acls = [
        {"acltype": kind, "topic": control, "priority": 0, "allow": True}
        for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
    ]
    deny = dict.fromkeys(("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe"), False)
    return {
        "clients": [{"username": admin, "roles": [{"rolename": "revoker"}]}],
        "roles": [{"rolename": "revoker", "acls": acls}],
        "groups": [],
        "defaultACLAccess": deny,
    }


def lockdown(
    cfg: MosquittoConfig, workdir: Path, *, dynsec_plugin: Path | None = DYNSEC_PLUGIN
) -> MosquittoConfig:
    """`cfg` with client id = CN, the ACL file and (when installed) the revocation plugin.

    The plugin rewrites its JSON (temp file + rename) as the broker's user, so the JSON lives
    in the broker-owned data directory, beside the persistence file and the pid file.
    """
    plugin = dynsec_plugin if dynsec_plugin is not None and dynsec_plugin.exists() else None
    return replace(
        cfg,
        clientid_from_identity=True,
        acl_file=cfg.acl_file or workdir / "acl.conf",
        dynsec_plugin=plugin,
        dynsec_config=(cfg.data_dir / "dynsec.json") if plugin else None,
    )


def write_broker_files(
    cfg: MosquittoConfig,
    role: Role,
    district: str,
    *,
    services: Sequence[ServiceAcl] | None = None,
    node: str | None = None,
) -> Mapping[str, Path]:
    """Write the ACL and (once) the plugin's JSON that `cfg` points to, and make the
    persistence folder (a broker cannot save into a folder that is not there); return the paths."""
    written: dict[str, Path] = {}
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    if cfg.acl_file is not None:
        acl = render_acl(
            role, district, services if services is not None else default_services(role, district), node=node
        )
        cfg.acl_file.parent.mkdir(parents=True, exist_ok=True)
        cfg.acl_file.write_text(acl)
        written["acl"] = cfg.acl_file
    if cfg.dynsec_config is not None and not cfg.dynsec_config.exists():
        # The broker rewrites this file itself afterwards; never clobber its state.
        cfg.dynsec_config.parent.mkdir(parents=True, exist_ok=True)
        cfg.dynsec_config.write_text(json.dumps(dynsec_bootstrap(), indent=2))
        written["dynsec"] = cfg.dynsec_config
    return written


def broker_profile(
    workdir: Path, files: BrokerInputs, *, port: int, bind: str = "127.0.0.1", user: str | None = None
) -> MosquittoConfig:
    """The locked-down broker `cityedge broker config` renders: mTLS only, TLS 1.2+, CRL, ACL.

    Every path is made absolute: Mosquitto resolves relative paths against its own working
    directory (`/` under systemd), not against the config file.
    """
    workdir = workdir.absolute()
    base = MosquittoConfig(
        data_dir=workdir / "data",
        pid_file=workdir / "data" / "mosquitto.pid",
        tls_port=port,
        tls_bind=bind,
        cafile=files.chain.absolute(),
        certfile=files.cert.absolute(),
        keyfile=files.key.absolute(),
        crlfile=files.crl.absolute(),
        tls_version="tlsv1.2",
    )
    if user is not None:
        base = replace(base, user=user)
    return lockdown(base, workdir)
