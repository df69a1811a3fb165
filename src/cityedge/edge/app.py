"""Composition root of the edge agent: outbox, uplink, local bus, producers, metrics.

Only this module wires the node's parts together; each part gets its dependencies passed in.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server

from cityedge import __version__
from cityedge.edge.config import EdgeConfig
from cityedge.edge.health import HostSample, build_heartbeat, camera_health, heartbeat_dict, link_health
from cityedge.edge.healthz import HealthServer, start_health
from cityedge.edge.localbus import LocalBus
from cityedge.edge.ota.spool import SpoolDrain
from cityedge.edge.outbox import (
    DEFAULT_POLICIES,
    GroupCommitter,
    Outbox,
    OutboxLimits,
    ResendPolicy,
    StreamPolicy,
)
from cityedge.edge.producers import HeartbeatProducer, SyntheticProducer
from cityedge.edge.uplink import Uplink
from cityedge.protocol.codec import encode_envelope
from cityedge.protocol.contract import check_envelope
from cityedge.protocol.envelope import Envelope
from cityedge.protocol.errors import ConfigError, ContractError
from cityedge.protocol.health import CameraHealth
from cityedge.protocol.ids import uuid7
from cityedge.protocol.topics import LOCAL_ROOT
from cityedge.transport import certificate_not_after

if TYPE_CHECKING:
    from cityedge.edge.identity import Renewer

__all__ = ["EdgeAgent", "OutboxSink"]

log = logging.getLogger(__name__)


class OutboxSink:
    """The node's RecordSink: make the envelope at the source, check it at the door, commit it
    (group commit: concurrent producers share a transaction). A record that breaks the
    contract is a producer's bug: it goes to the quarantine with its reason, loudly."""

    def __init__(
        self, outbox: Outbox, group: GroupCommitter[Outbox], node_id: str, versions: dict[str, str]
    ) -> None:
        self.outbox = outbox
        self.group = group
        self.node_id = node_id
        self.versions = versions

    def emit(self, stream: str, kind: str, body: dict[str, Any], ts: datetime) -> None:
        env = Envelope(
            id=str(uuid7(int(time.time() * 1000))),
            node=self.node_id,
            stream=stream,
            kind=kind,
            ts=ts,
            body=body,
            ver=self.versions,
        )
        self.commit(env)

    def commit(self, env: Envelope) -> None:
        try:
            check_envelope(env)
        except ContractError as exc:
            log.error(
                "agent: a %s record (%s) breaks the record contract and is quarantined: %s",
                env.stream,
                env.kind,
                exc,
            )
            self.outbox.quarantine(f"producer/{env.stream}", exc.reason, str(exc), _raw(env))
            return
        # a refusal (full, disk floor) is counted by the outbox itself, by stream and reason
        self.group.commit(env)


def _raw(env: Envelope) -> bytes:
    try:
        return encode_envelope(env)
    except (TypeError, ValueError, OverflowError):
        return repr(env).encode(errors="replace")


def _policies(config: EdgeConfig) -> dict[str, StreamPolicy]:
    policies = dict(DEFAULT_POLICIES)
    for name, p in config.outbox.streams.items():
        policies[name] = StreamPolicy(name=name, priority=p.priority, when_full=p.when_full, ttl_s=p.ttl_s)
    return policies


class EdgeAgent:
    """One node's agent. `start()` returns at once; `stop()` shuts down in order."""

    def __init__(self, config: EdgeConfig, *, registry: CollectorRegistry | None = None) -> None:
        config.check_files()
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.versions = {"agent": config.agent_version or __version__}
        config.data_dir.mkdir(parents=True, exist_ok=True)
        limits = OutboxLimits(
            max_bytes=config.outbox.max_bytes,
            max_records=config.outbox.max_records,
            min_free_disk_bytes=config.outbox.min_free_disk_bytes,
        )
        up = config.uplink
        resend = ResendPolicy(timeout_s=up.store_ack_timeout_s, cap_s=up.store_ack_timeout_cap_s)
        self.outbox = Outbox.open(config.data_dir / "outbox.db", _policies(config), limits, resend=resend)
        _check_disk_floor(config)
        self.group = GroupCommitter(self.outbox)
        uplink_cfg = up.model_copy(update={"tls": config.uplink_tls()})
        self.uplink = Uplink(uplink_cfg, config.node_id, config.district, self.outbox, registry=self.registry)
        self.renewer: Renewer | None = None
        if config.identity is not None:
            from cityedge.edge.identity import CredentialStore, Renewer

            self.renewer = Renewer(
                config.identity.api_url,
                config.node_id,
                CredentialStore(config.identity.credentials_dir),
                self.uplink.swap_credentials,
                registry=self.registry,
            )
        self.sink = OutboxSink(self.outbox, self.group, config.node_id, self.versions)
        self.started_at = time.time()
        self.local_bus: LocalBus | None = None
        if config.local_bus is not None:
            self.local_bus = LocalBus(
                config.local_bus,
                config.node_id,
                self.versions,
                self.group,
                registry=self.registry,
            )
        self._threads: list[Any] = []
        self.health: HealthServer | None = None
        if config.synthetic is not None:
            self._threads.append(SyntheticProducer(config.synthetic, self.sink))
        self._threads.append(HeartbeatProducer(config.heartbeat.interval_s, self.sink, self.heartbeat_body))
        # OTA: install reports the supervisor spooled go to the outbox (`ota` stream)
        self._threads.append(SpoolDrain(config.ota_spool or config.data_dir / "ota" / "reports", self.sink))
        self.retention: Any = None
        self.cameras: Any = None
        self._fps_targets: dict[str, float] = {}
        if config.cameras:
            self._build_cameras()

    def _build_cameras(self) -> None:
        from cityedge.edge.camera.config import parse_camera
        from cityedge.edge.camera.processes import build_cameras, process_count
        from cityedge.edge.retention import RetentionConfig, RetentionStore

        source = f"node {self.config.node_id}"
        cameras = [parse_camera(c, source) for c in self.config.cameras]
        self._fps_targets = {c.id: c.fps for c in cameras}
        if self.config.retention is not None:
            retention_cfg = RetentionConfig.model_validate(self.config.retention)
            self.retention = RetentionStore(retention_cfg, registry=self.registry)
        workers = self.config.camera_workers
        processes = process_count(len(cameras), workers.processes, workers.cameras_per_process)
        self.cameras = build_cameras(
            cameras,
            processes,
            sink=self.sink,
            publish_local=self.publish_local,
            registry=self.registry,
            recorders=self.retention.recorder if self.retention is not None else None,
            retention=self.config.retention,
        )

    def publish_local(self, suffix: str, payload: bytes) -> bool:
        """A local decision goes out on the node's bus at once (if there is one)."""
        if self.local_bus is None:
            return False
        return self.local_bus.publish(f"{LOCAL_ROOT}/{suffix}", payload)

    def start(self) -> EdgeAgent:
        before = set(threading.enumerate())
        _register_outbox_metrics(self.outbox, self.registry)
        if self.config.metrics_port is not None:
            _serve_metrics(self.config.metrics_port, self.registry)
        self.group.start()
        self.uplink.start()
        if self.renewer is not None:
            self.renewer.start()
        if self.local_bus is not None:
            self.local_bus.start()
        for producer in self._threads:
            producer.start()
        if self.retention is not None:
            self.retention.start()
        if self.cameras is not None:
            self.cameras.start()
        self.health = start_health(self.config.health, self, before)
        log.info("agent %s started (district %s)", self.config.node_id, self.config.district)
        return self

    # -- what the health endpoint reads (edge/healthz.py) --
    def outbox_open(self) -> bool:
        try:
            self.outbox.stats()
        except Exception:
            return False
        return True

    def uplink_connected(self) -> bool:
        return self.uplink.connected

    def stop_producers(self) -> None:
        """Stop making new records; the uplink keeps draining the outbox."""
        for producer in self._threads:
            producer.stop()

    def stop(self) -> None:
        if self.health is not None:
            self.health.stop()
        if self.cameras is not None:
            self.cameras.stop()
        if self.retention is not None:
            self.retention.stop()
        self.stop_producers()
        if self.renewer is not None:
            self.renewer.stop()
        if self.local_bus is not None:
            self.local_bus.stop()
        self.group.stop()
        self.uplink.stop()
        self.outbox.close()

    def _camera_health(self) -> dict[str, Any]:
        # Percentiles over the last heartbeat interval, so the cloud sees the current state.
        return _camera_health_of(
            self.cameras, time.time() - self.config.heartbeat.interval_s, self._fps_targets
        )

    def heartbeat_body(self) -> dict[str, Any]:
        interval = self.config.heartbeat.interval_s
        up = self.uplink
        rtts = up.rtt.since(time.monotonic() - interval)
        beat = build_heartbeat(
            interval_s=interval,
            versions=self.versions,
            uptime_s=time.time() - self.started_at,
            outbox=self.outbox.stats(),
            cameras=self._camera_health(),
            link=link_health(up.connected, up.reconnects, rtts),
            host=_host_sample(self.config.data_dir),
            cert_days_left=_cert_days_left(self.renewer, self.config),
            now=datetime.now(UTC),
        )
        return heartbeat_dict(beat)


def _host_sample(data_dir: Path) -> HostSample:
    import psutil

    disk = shutil.disk_usage(data_dir)
    # cpu_percent(None): use since the previous call (the previous heartbeat), never blocks
    return HostSample(disk.free, disk.total, psutil.cpu_percent(None), psutil.virtual_memory().percent)


def _cert_days_left(renewer: Renewer | None, config: EdgeConfig) -> float | None:
    if renewer is not None and renewer.days_left is not None:
        return float(renewer.days_left)
    tls = config.uplink_tls()
    not_after = certificate_not_after(Path(tls.certfile)) if tls is not None else None
    if not_after is None:
        return None
    return (not_after - datetime.now(UTC)).total_seconds() / 86400


def _check_disk_floor(config: EdgeConfig) -> None:
    """A disk smaller than the outbox's floor can never hold a record: refuse to start. A disk
    that is merely full now gets a loud warning (the outbox refuses records until it frees up)."""
    floor = config.outbox.min_free_disk_bytes
    usage = shutil.disk_usage(config.data_dir)
    if usage.total < floor:
        raise ConfigError(
            f"outbox.min_free_disk_bytes is {floor} bytes but the disk holding {config.data_dir} has only "
            f"{usage.total} bytes in all: no record could ever be stored; lower the floor or use a larger"
            " disk"
        )
    if usage.free < floor:
        log.critical(
            "agent: only %d bytes free on the disk of %s, under the outbox's floor of %d: every record is "
            "refused (and counted) until space is freed",
            usage.free, config.data_dir, floor,
        )  # fmt: skip


def _camera_health_of(cameras: Any, since: float, targets: dict[str, float]) -> dict[str, CameraHealth]:
    if cameras is None:
        return {}
    return camera_health(cameras.stats(since), targets)


def _serve_metrics(port: int, registry: CollectorRegistry) -> None:
    try:
        start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"metrics_port {port}: cannot listen on 127.0.0.1:{port}: {exc.strerror} (another agent "
            "or exporter holds it: choose another metrics_port, or remove it to serve no metrics)"
        ) from None


def _register_outbox_metrics(outbox: Outbox, registry: CollectorRegistry) -> None:
    from cityedge.edge.outbox.metrics import register_outbox_metrics

    register_outbox_metrics(outbox, registry)
