"""The pilot's district on one machine, brought up in order and down in reverse.

Cloud: the district CA (offline root + issuing CA), the registry with the inventory, the
control plane's API over HTTPS, the cloud broker (Mosquitto with mTLS, ACLs and the CRL, or
the embedded broker), ingest with its SQLite store, and the pixel monitor. Each node enrolls
through the API with a one-time token (its key is made here and never leaves its directory),
then runs an `EdgeAgent` (one process per node) whose uplink reaches the broker through its own
impairment proxy.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityedge.protocol.errors import CityEdgeError
from cityedge.protocol.spec_model import UseCaseSpec
from cityedge.sim.brokers import free_port
from cityedge.sim.pilot.network import NodeLink
from cityedge.sim.pilot.staging import CameraFeed, node_id
from cityedge.transport import MqttVersion

__all__ = ["DISTRICT", "Stack", "choose_broker"]

log = logging.getLogger(__name__)

DISTRICT = "corridor-a"
SENSOR_READINGS_PER_S = 2.0


def choose_broker(choice: str) -> str:
    from cityedge.sim.brokers import mosquitto_binary

    if choice == "auto":
        return "mosquitto" if mosquitto_binary() else "embedded"
    if choice == "mosquitto" and mosquitto_binary() is None:
        raise CityEdgeError("--broker mosquitto: mosquitto is not installed (apt-get install mosquitto)")
    return choice


@dataclass
class Stack:
    spec: UseCaseSpec
    workdir: Path
    broker_kind: str
    exits: ExitStack = field(default_factory=ExitStack)
    api_url: str = ""
    dashboard_url: str | None = None
    operator_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    notes: list[str] = field(default_factory=list)
    agents: dict[str, Any] = field(default_factory=dict)
    links: list[NodeLink] = field(default_factory=list)
    broker_port: int = 0
    store: Any = None
    consumer: Any = None
    monitor: Any = None
    releases: Any = None  # PilotReleases when the spec rolls out a release
    auth: Any = None

    # --- cloud ---------------------------------------------------------------------------
    def start_cloud(self) -> None:
        from cityedge.cloud.registry import Registry
        from cityedge.cloud.store import RecordStore, make_engine, upgrade
        from cityedge.cloud.store.registry import RegistryStore
        from cityedge.pki import init_ca

        now = datetime.now(UTC)
        _root, self.layout = init_ca(
            self.workdir / "offline-root", self.workdir / "ca", name="pilot", now=now
        )
        db_url = f"sqlite:///{self.workdir / 'cloud.db'}"
        engine = make_engine(db_url)
        upgrade(engine)
        self.exits.callback(engine.dispose)
        self.registry = Registry(RegistryStore(engine), self.layout)
        self.registry.import_inventory(_inventory(self.spec.nodes), "pilot inventory", now)
        self.store = RecordStore.open(db_url)
        self.exits.callback(self.store.close)
        if self.spec.rollout is not None:
            from cityedge.sim.pilot.releases import PilotReleases

            self.releases = PilotReleases.create(self.workdir, self.spec.rollout, self.spec.source)
        self._serve_api(engine)
        self._start_broker()
        self._start_ingest(db_url)
        self._start_monitor()
        self._serve_dashboard(db_url)

    def _identity(self, name: str, **kw: Any) -> Any:
        return self.registry.ca.issue_to_directory(
            name, self.workdir / "certs", now=datetime.now(UTC), chain=self.layout.chain.read_bytes(), **kw
        )

    def _serve_api(self, engine: Any) -> None:
        import uvicorn

        from cityedge.cloud.api import ApiDeps, ApiServerConfig, create_app, uvicorn_config

        server = self._identity("api", server_auth=True, extra_sans=("localhost", "127.0.0.1"))
        port = free_port()
        cfg = ApiServerConfig("127.0.0.1", port, server.cert_path, server.key_path, self.layout.chain)
        app = create_app(ApiDeps.with_tokens(self.registry, [self.operator_token]))
        if self.releases is not None:  # releases, rollouts, audit and the TUF repository at /tuf
            from cityedge.sim.pilot.releases import attach_releases

            self.auth = attach_releases(app, self.releases, engine, self.operator_token)
        uv = uvicorn.Server(uvicorn_config(app, cfg))
        thread = threading.Thread(target=uv.run, name="pilot-api", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not uv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise CityEdgeError("the control plane API did not start")
            time.sleep(0.02)
        self.exits.callback(thread.join, 10)
        self.exits.callback(setattr, uv, "should_exit", True)
        self.api_url = f"https://127.0.0.1:{port}"

    def _serve_dashboard(self, db_url: str) -> None:
        """The control plane's dashboard and fleet monitor over the pilot's store, live."""
        from cityedge.cloud.app import ControlPlane
        from cityedge.cloud.config import ControlPlaneConfig
        from cityedge.cloud.web.server import start_dashboard

        plane = ControlPlane.build(ControlPlaneConfig(database=db_url, ca_dir=self.layout.directory))
        self.exits.callback(plane.close)
        dashboard = start_dashboard(plane, tokens=[self.operator_token])
        self.exits.callback(dashboard.stop)
        self.dashboard_url = dashboard.url

    def _start_broker(self) -> None:
        server = self._identity("broker", server_auth=True, extra_sans=("localhost", "127.0.0.1"))
        if self.broker_kind == "embedded":
            from cityedge.sim.iotcore_broker import IotcoreBroker

            broker = IotcoreBroker(
                self.workdir / "broker", tls=(self.layout.chain, server.cert_path, server.key_path)
            )
            self.notes.append(
                "cloud broker: embedded (iotcore: rumqttd in a child process), MQTT 3.1.1 over TLS; it does "
                "not require client certificates. Install mosquitto for the production broker with mTLS "
                "and ACLs."
            )
        else:
            broker = self._mosquitto(server)
            self.notes.append(
                "cloud broker: Mosquitto with mutual TLS, per-device ACLs and the district CRL."
            )
        self.exits.enter_context(broker)
        self.broker_port = broker.port
        self.protocol: MqttVersion = "3.1.1" if self.broker_kind == "embedded" else "5"

    def _mosquitto(self, server: Any) -> Any:
        from cityedge.deploy.mosquitto import (
            BrokerInputs,
            ServiceAcl,
            broker_profile,
            default_services,
            write_broker_files,
        )
        from cityedge.sim.brokers import MosquittoProcess

        workdir = self.workdir / "broker"
        files = BrokerInputs(self.layout.chain, server.cert_path, server.key_path, self.layout.crl)
        cfg = broker_profile(workdir, files, port=free_port())
        services = (*default_services("cloud", DISTRICT), ServiceAcl("pixel-monitor", read=("#",)))
        if self.releases is not None:  # each node's OTA listener reads its own down/ota, nothing else
            from cityedge.sim.pilot.releases import listener_acls

            services += listener_acls(DISTRICT, [node_id(n) for n in range(1, self.spec.nodes + 1)])
        write_broker_files(cfg, "cloud", DISTRICT, services=services)
        return MosquittoProcess(cfg, workdir)

    def _tls(self, name: str) -> Any:
        from cityedge.transport import TlsFiles

        ident = self._identity(name, lifetime=timedelta(days=1))
        return TlsFiles(cafile=self.layout.chain, certfile=ident.cert_path, keyfile=ident.key_path)

    def _start_ingest(self, db_url: str) -> None:
        from cityedge.cloud.ingest import IngestConfig, IngestConsumer

        cfg = IngestConfig(
            port=self.broker_port,
            tls=self._tls("ingest"),
            client_id="ingest",
            protocol=self.protocol,
            database=db_url,
        )
        self.consumer = IngestConsumer(cfg, self.store).start()
        self.exits.callback(self.consumer.stop)
        if not self.consumer.wait_subscribed(30):
            raise CityEdgeError("ingest did not subscribe to the cloud broker within 30 s")

    def _start_monitor(self) -> None:
        from cityedge.sim.pilot.monitor import PixelMonitor
        from cityedge.transport import client_tls_context, make_client

        tls = self._tls("pixel-monitor")
        client = make_client("pixel-monitor", self.protocol, persistent=False)
        client.tls_set_context(client_tls_context(tls, "pixel monitor tls"))
        self.monitor = PixelMonitor(client).start("127.0.0.1", self.broker_port)
        self.exits.callback(self.monitor.stop)
        if not self.monitor.subscribed.wait(30):
            raise CityEdgeError("the pixel monitor did not subscribe to the cloud broker within 30 s")

    # --- nodes ---------------------------------------------------------------------------
    def start_nodes(self, feeds: list[CameraFeed], log_path: Path) -> None:
        """One process per node; each enrolls itself with a one-time token, then runs its agent."""
        from cityedge.sim.pilot.node import NodeProcess

        for number in range(1, self.spec.nodes + 1):
            node = node_id(number)
            link = NodeLink.start(
                node, self.spec.link(number), self.broker_port, seed=self.spec.seed + number
            )
            self.exits.callback(link.proxy.stop)
            self.links.append(link)
            config = self._agent_config(node, link.proxy.port, [f for f in feeds if f.node == node])
            ota = self._ota(node, config, link.proxy.port) if self.releases is not None else None
            proc = NodeProcess(node, self._enrollment(number), config, log_path, ota)
            self.exits.callback(proc.stop)
            self.agents[node] = proc.start()

    def _ota(self, node: str, config: dict[str, Any], port: int) -> dict[str, Any]:
        """The node's OTA supervisor: health gates on its agent's metrics, notices over its link."""
        from cityedge.sim.pilot.releases import fleet

        assert self.spec.rollout is not None
        config["metrics_port"] = free_port()
        tls = self._tls(f"{node}-ota")
        accepts = fleet([node_id(n) for n in range(1, self.spec.nodes + 1)], self.spec.rollout)[node]
        notify = {
            "host": "127.0.0.1",
            "port": port,
            "protocol": self.protocol,
            "client_id": f"{node}-ota",
            "tls": {"cafile": str(tls.cafile), "certfile": str(tls.certfile), "keyfile": str(tls.keyfile)},
        }
        env = {
            "home": self.workdir / node,
            "district": DISTRICT,
            "api_url": self.api_url,
            "cafile": self.layout.chain,
            "metrics_port": config["metrics_port"],
            "notify": notify,
            "camera_fps": self.spec.fps_per_camera,
            "node_soak_s": self.spec.rollout.node_soak_s,
        }
        return {
            "config": self.releases.node_config(node, accepts, env),
            "factory": str(self.releases.factory),
        }

    def _enrollment(self, number: int) -> dict[str, Any]:
        serial = f"SN-PILOT-{number:03d}"
        token, _ = self.registry.issue_token(serial, datetime.now(UTC))
        return {
            "api_url": self.api_url,
            "token": token,
            "serial": serial,
            "device_id": node_id(number),
            "credentials_dir": str(self.workdir / node_id(number) / "creds"),
            "cafile": str(self.layout.chain),
        }

    def _agent_config(self, node: str, port: int, feeds: list[CameraFeed]) -> dict[str, Any]:
        data_dir = self.workdir / node
        return {
            "node_id": node,
            "district": DISTRICT,
            "data_dir": str(data_dir),
            "uplink": {
                "host": "127.0.0.1",
                "port": port,
                "protocol": self.protocol,
                "backoff_base_s": 0.2,
                "backoff_cap_s": 3.0,
            },
            "identity": {"api_url": self.api_url, "credentials_dir": str(data_dir / "creds")},
            "heartbeat": {"interval_s": 5.0},
            # sensor telemetry as a district node carries it: a steady stream through every outage
            "synthetic": {"telemetry_per_s": SENSOR_READINGS_PER_S, "incidents_per_min": 0},
            "cameras": [_camera(f) for f in feeds],
            "retention": {
                "root": str(data_dir / "video"),
                "ttl_s": self.spec.retention.raw_s,
                "segment_s": 10.0,
                "sweep_s": 5.0,
                "min_free_bytes": 0,
            },
        }

    def close(self) -> None:
        self.exits.close()


def _camera(feed: CameraFeed) -> dict[str, Any]:
    from cityedge.sim.scene import scene_zones

    return {
        "id": feed.camera,
        "url": f"tcp://127.0.0.1:{feed.port}",
        "fps": feed.scenario.fps,
        "zones": scene_zones(feed.scenario).model_dump(mode="json"),
        "record": True,
        "stall_timeout_s": 10.0,
    }


def _inventory(nodes: int) -> str:
    rows = ["device_id,serial,model,ip,mac,sim"]
    for n in range(1, nodes + 1):
        rows.append(
            f"{node_id(n)},SN-PILOT-{n:03d},pilot-sim,127.0.0.1,02:00:00:00:00:{n:02x},SIM-PILOT-{n:03d}"
        )
    return "\n".join(rows) + "\n"
