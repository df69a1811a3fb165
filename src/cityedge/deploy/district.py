"""`cityedge district init`: one directory holding a complete single-machine district.

The offline root and the issuing CA, service certificates (recorded in the registry), the
cloud broker and the node's broker (rendered to start as they are, owned by their user),
the control plane's and ingest's configs, a node config and its inventory row, systemd
units, and the exact commands that bring it up. A failure leaves nothing behind.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from cityedge.cloud.app import ControlPlane
from cityedge.cloud.config import ControlPlaneConfig
from cityedge.cloud.registry.services import issue_service
from cityedge.configfile import parse_config
from cityedge.deploy.access import Fix
from cityedge.deploy.broker import BrokerInputs, RenderedBroker, render_broker
from cityedge.deploy.district_files import DistrictLayout, DistrictSettings
from cityedge.edge.config import EdgeConfig
from cityedge.pki import init_ca, write_pem_atomic
from cityedge.protocol.errors import ConfigError

__all__ = ["District", "DistrictSettings", "Step", "init_district", "tools"]


@dataclass(frozen=True)
class Step:
    title: str
    commands: tuple[str, ...]  # a long-running process ends with " &"


@dataclass(frozen=True)
class District:
    layout: DistrictLayout
    brokers: dict[str, RenderedBroker]
    steps: tuple[Step, ...]

    @property
    def run_as_root(self) -> list[Fix]:
        return [fix for broker in self.brokers.values() for fix in broker.pending]

    @property
    def changed_outside(self) -> list[Fix]:
        """What was changed outside the district's directory so the brokers' user gets through."""
        root = self.layout.paths.root
        fixes = [f for b in self.brokers.values() for f in b.applied if not f.path.is_relative_to(root)]
        return list({fix.command: fix for fix in fixes}.values())

    def text(self) -> str:
        """The next steps as the operator reads them (and as NEXT-STEPS.txt keeps them)."""
        out: list[str] = []
        for number, step in enumerate(self.steps, 1):
            out += [f"{number}. {step.title}", *(f"  $ {c}" for c in step.commands), ""]
        return "\n".join(out)


def tools() -> tuple[str, str]:
    """Absolute paths of the executables the steps and units name (systemd wants them absolute)."""
    beside = Path(sys.executable).parent / "cityedge"
    cityedge = str(beside) if beside.exists() else shutil.which("cityedge") or "cityedge"
    mosquitto = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), "mosquitto"
    )
    return cityedge, mosquitto


def init_district(settings: DistrictSettings, now: datetime) -> District:
    """Write the district under `settings.directory` (new or empty), or nothing at all."""
    layout = DistrictLayout(settings)
    root = layout.paths.root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(f"{root} exists and is not an empty directory; choose a new one")
    existed = root.exists()
    try:
        return _write(layout, now)
    except BaseException:
        for child in root.iterdir() if root.exists() else ():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if not existed and root.exists():
            root.rmdir()
        raise


def _write(layout: DistrictLayout, now: datetime) -> District:
    s, paths = layout.s, layout.paths
    paths.root.mkdir(parents=True, exist_ok=True)
    init_ca(paths.offline, paths.ca, name=s.name, now=now)
    with ControlPlane.build(parse_config(ControlPlaneConfig, layout.control_plane(), "district")) as plane:
        _issue_services(layout, plane, now)
    _write_yaml(paths.control_plane, layout.control_plane())
    write_pem_atomic(paths.operator_tokens, (secrets.token_urlsafe(32) + "\n").encode(), private=True)
    for identity in s.ingest:
        _write_yaml(paths.ingest_config(identity), layout.ingest(identity))
    _write_node(layout)
    brokers = _render_brokers(layout)
    _write_units(layout)
    district = District(layout, brokers, _steps(layout))
    paths.steps.write_text(district.text())
    return district


def _issue_services(layout: DistrictLayout, plane: ControlPlane, now: datetime) -> None:
    s, lifetime = layout.s, plane.config.service_lifetime
    wanted = [
        ("api", "api", layout.service_dir("api"), s.sans),
        ("revoker", "revoker", layout.service_dir("revoker"), ()),
    ]
    wanted += [("ingest", name, layout.service_dir(name), ()) for name in s.ingest]
    wanted += [("broker", "broker", layout.paths.cloud_broker / "tls", s.sans)]
    wanted += [
        ("broker", f"{s.node}-broker", layout.node_dir / "local-broker" / "tls", ("localhost", "127.0.0.1"))
    ]
    for profile, name, out, sans in wanted:
        issue_service(plane.registry, profile, name, sans, out, now=now, lifetime=lifetime)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _write_node(layout: DistrictLayout) -> None:
    node = layout.node()
    # Validated now; its certificate files come later, from `cityedge enroll` on the node.
    parse_config(EdgeConfig, node, str(layout.node_dir / "node.yaml"))
    _write_yaml(layout.node_dir / "node.yaml", node)
    (layout.node_dir / "devices.csv").write_text(layout.inventory())


def _render_brokers(layout: DistrictLayout) -> dict[str, RenderedBroker]:
    s, paths = layout.s, layout.paths
    chain, crl = paths.ca / "chain.pem", paths.ca / "crl.pem"
    cloud_tls, local_tls = paths.cloud_broker / "tls", layout.node_dir / "local-broker" / "tls"
    cloud = render_broker(
        "cloud", paths.cloud_broker,
        BrokerInputs(chain, cloud_tls / "broker.crt", cloud_tls / "broker.key", crl),
        district=s.name, port=s.broker_port, bind=s.bind, user=s.user, ingest=s.ingest,
    )  # fmt: skip
    name = f"{s.node}-broker"
    local = render_broker(
        "local", layout.node_dir / "local-broker",
        BrokerInputs(chain, local_tls / f"{name}.crt", local_tls / f"{name}.key", crl),
        district=s.name, port=s.local_port, bind="127.0.0.1", node=s.node, user=s.user,
    )  # fmt: skip
    return {"cloud": cloud, "local": local}


def _commands(layout: DistrictLayout) -> dict[str, str]:
    s, paths, ce = layout.s, layout.paths, layout.s.cityedge
    creds = layout.node_dir / "creds"
    return {
        "broker": f"{s.mosquitto} -c {paths.cloud_broker / 'mosquitto.conf'}",
        "api": f"{ce} api serve --config {paths.control_plane}",
        **{f"ingest:{i}": f"{ce} cloud ingest --config {paths.ingest_config(i)}" for i in s.ingest},
        "local-broker": f"{s.mosquitto} -c {layout.node_dir / 'local-broker' / 'mosquitto.conf'}",
        "agent": f"{ce} edge run --config {layout.node_dir / 'node.yaml'}",
        "import": f"{ce} inventory import {layout.node_dir / 'devices.csv'} -d {layout.database}",
        "enroll": (
            f"CITYEDGE_ENROLL_TOKEN=$({ce} device token {s.node_serial} -d {layout.database} --token-only) "
            f"{ce} enroll --api {layout.api_url} --serial {s.node_serial} --device-id {s.node} "
            f"--dir {creds} --ca-file {paths.ca / 'chain.pem'}"
        ),
        "records": f"{ce} cloud records --db {layout.database} --limit 5",
    }


def _steps(layout: DistrictLayout) -> tuple[Step, ...]:
    c, s, paths = _commands(layout), layout.s, layout.paths
    user = f"; it drops to user {s.user}" if s.user else ""
    return (
        Step(f"Move {paths.offline} (the root key) onto removable media; only {paths.ca} stays online.", ()),
        Step(f"Start the cloud broker{user}:", (c["broker"] + " &",)),
        Step(
            "Start the control plane API and ingest:",
            (c["api"] + " &", *(c[f"ingest:{i}"] + " &" for i in s.ingest)),
        ),
        Step(
            f"Register node {s.node} and enroll it (its key is made on the node):", (c["import"], c["enroll"])
        ),
        Step("Start the node's broker and its agent:", (c["local-broker"] + " &", c["agent"] + " &")),
        Step("Watch records arrive (the node's heartbeat comes first):", (c["records"],)),
        Step(f"For production, install the units in {paths.systemd} instead of the lines ending in &.", ()),
    )


def _write_units(layout: DistrictLayout) -> None:
    c, s, units = _commands(layout), layout.s, layout.paths.systemd
    units.mkdir(parents=True, exist_ok=True)
    body = {
        f"cityedge-{s.name}-broker": layout.unit(f"cityedge {s.name} cloud broker", c["broker"], reload=True),
        f"cityedge-{s.name}-api": layout.unit(f"cityedge {s.name} control plane API", c["api"]),
        **{
            f"cityedge-{s.name}-{i}": layout.unit(f"cityedge {s.name} {i}", c[f"ingest:{i}"])
            for i in s.ingest
        },
        f"cityedge-{s.node}-broker": layout.unit(
            f"cityedge {s.node} local broker", c["local-broker"], reload=True
        ),
        f"cityedge-{s.node}-agent": layout.unit(f"cityedge {s.node} agent", c["agent"]),
    }
    for name, text in body.items():
        (units / f"{name}.service").write_text(text)
