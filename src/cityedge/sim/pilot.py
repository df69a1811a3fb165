"""The one-machine pilot: a cloud broker, ingest with a SQLite store, one edge agent making
synthetic telemetry and incidents through its outbox, and a link that is cut mid-run.

It reports what the node committed, what the cloud stored, duplicates and losses.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityedge.edge.config import TlsFiles
from cityedge.pki import IssuedIdentity
from cityedge.sim.brokers import MosquittoProcess, free_port, mosquitto_binary
from cityedge.sim.proxy import TcpProxy

__all__ = ["PilotOptions", "PilotReport", "run_pilot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PilotOptions:
    seconds: float = 20.0
    telemetry_per_s: float = 50.0
    incidents_per_min: float = 30.0
    outage_at_s: float | None = 6.0
    outage_for_s: float = 4.0
    broker: str = "auto"  # auto | mosquitto | embedded
    workdir: Path | None = None
    drain_timeout_s: float = 30.0


@dataclass
class PilotReport:
    broker: str
    tls: bool
    seconds: float
    link_cuts: int
    committed: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    duplicates: int = 0
    lost: int = 0
    order_violations: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.order_violations == 0 and self.pending == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _choose_broker(choice: str) -> str:
    if choice == "auto":
        return "mosquitto" if mosquitto_binary() else "embedded"
    return choice


def run_pilot(opts: PilotOptions) -> PilotReport:
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="cityedge-pilot-"))
    workdir.mkdir(parents=True, exist_ok=True)
    kind = _choose_broker(opts.broker)
    with _Stack(kind, workdir) as stack:
        return stack.run(opts)


class _Stack:
    """Brings the pilot's parts up and down in order."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.notes: list[str] = []
        self.broker: Any = None
        self.proxy: TcpProxy | None = None
        self.consumer: Any = None
        self.store: Any = None
        self.agent: Any = None

    def __enter__(self) -> _Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        parts = (self.agent, self.consumer, self.store, self.proxy, self.broker)
        for part in parts:
            if part is None:
                continue
            try:
                part.close() if part is self.store else part.stop()
            except Exception:
                log.exception("pilot: shutdown of %s failed", type(part).__name__)

    def _start_broker(self) -> tuple[int, Any, Any]:
        """Start the cloud broker; returns (port, node TLS files, ingest TLS files)."""
        if self.kind == "embedded":
            from cityedge.sim.embedded import EmbeddedBroker

            self.broker = EmbeddedBroker().start()
            self.notes.append(
                "Mosquitto not found: ran on the embedded amqtt broker (MQTT 3.1.1, plain TCP on "
                "loopback, no mTLS). Install mosquitto for the production-like pilot."
            )
            return self.broker.port, None, None
        from cityedge.deploy.mosquitto import MosquittoConfig
        from cityedge.pki import CertificateAuthority

        now = datetime.now(UTC)
        ca = CertificateAuthority.create("cityedge pilot CA", now=now)
        certs = self.workdir / "certs"
        server = ca.issue_to_directory(
            "broker", certs, now=now, server_auth=True, extra_sans=("localhost", "127.0.0.1")
        )
        node = ca.issue_to_directory("edge-node-001", certs, now=now, lifetime=timedelta(days=1))
        ingest = ca.issue_to_directory("ingest", certs, now=now, lifetime=timedelta(days=1))
        cfg = MosquittoConfig(
            data_dir=self.workdir / "broker-data",
            tls_port=free_port(),
            cafile=server.ca_path,
            certfile=server.cert_path,
            keyfile=server.key_path,
        )
        self.broker = MosquittoProcess(cfg, self.workdir / "broker").start()
        self.notes.append(
            "Cloud broker: Mosquitto with mutual TLS (per-device certificates from a pilot CA)."
        )
        return cfg.tls_port or 0, _tls_files(node), _tls_files(ingest)

    def run(self, opts: PilotOptions) -> PilotReport:
        from cityedge.cloud.ingest import IngestConfig, IngestConsumer
        from cityedge.cloud.store import RecordStore
        from cityedge.edge.app import EdgeAgent
        from cityedge.edge.config import EdgeConfig, SyntheticConfig, UplinkConfig

        port, node_tls, ingest_tls = self._start_broker()
        self.store = RecordStore.open(f"sqlite:///{self.workdir / 'cloud.db'}")
        ingest_cfg = IngestConfig.model_validate(
            {
                "host": "127.0.0.1",
                "port": port,
                "tls": ingest_tls.model_dump() if ingest_tls else None,
                "protocol": "auto" if self.kind == "mosquitto" else "3.1.1",
                "database": f"sqlite:///{self.workdir / 'cloud.db'}",
            }
        )
        self.consumer = IngestConsumer(ingest_cfg, self.store)
        self.consumer.start()
        self.proxy = TcpProxy(port).start()
        cfg = EdgeConfig(
            node_id="edge-node-001",
            district="corridor-a",
            data_dir=self.workdir / "node",
            uplink=UplinkConfig(
                host="127.0.0.1", port=self.proxy.port, tls=node_tls, backoff_base_s=0.2, backoff_cap_s=2.0
            ),
            synthetic=SyntheticConfig(
                telemetry_per_s=opts.telemetry_per_s, incidents_per_min=opts.incidents_per_min
            ),
        )
        self.agent = EdgeAgent(cfg).start()
        self._produce(opts)
        self.agent.stop_producers()
        self._drain(opts.drain_timeout_s)
        return self._report(opts)

    def _produce(self, opts: PilotOptions) -> None:
        start = time.monotonic()
        cut = False
        while (elapsed := time.monotonic() - start) < opts.seconds:
            assert self.proxy is not None
            if opts.outage_at_s is not None and not cut and elapsed >= opts.outage_at_s:
                log.info("pilot: cutting the link for %.1fs", opts.outage_for_s)
                self.proxy.cut()
                cut = True
            if cut and not self.proxy.up and elapsed >= (opts.outage_at_s or 0) + opts.outage_for_s:
                log.info("pilot: link restored")
                self.proxy.restore()
            time.sleep(0.05)
        assert self.proxy is not None
        self.proxy.restore()

    def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.agent.outbox.stats()
            if stats.total_pending == 0 and stats.total_inflight == 0:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # let the last acknowledged batches commit in the store

    def _report(self, opts: PilotOptions) -> PilotReport:
        stats = self.agent.outbox.stats()
        committed = {name: s.last_seq for name, s in stats.streams.items() if s.last_seq}
        records = self.store.records(node="edge-node-001")
        stored: dict[str, int] = {}
        seqs: dict[str, list[int]] = {}
        latencies = []
        for r in records:
            stored[r.stream] = stored.get(r.stream, 0) + 1
            seqs.setdefault(r.stream, []).append(r.seq)
            latencies.append((r.received_at - r.ts).total_seconds() * 1000.0)
        violations = sum(sum(1 for a, b in itertools.pairwise(v) if b <= a) for v in seqs.values())
        lost = sum(max(0, n - stored.get(s, 0)) for s, n in committed.items()) - stats.total_pending
        report = PilotReport(
            broker=self.kind,
            tls=self.kind == "mosquitto",
            seconds=opts.seconds,
            link_cuts=self.proxy.cuts if self.proxy else 0,
            committed=committed,
            stored=stored,
            pending=stats.total_pending,
            duplicates=self.consumer.stats().duplicates,
            lost=max(0, lost),
            order_violations=violations,
            notes=self.notes,
        )
        if latencies:
            latencies.sort()
            report.latency_ms = {
                "p50": round(statistics.median(latencies), 1),
                "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
                "max": round(latencies[-1], 1),
            }
        return report


def _tls_files(ident: IssuedIdentity) -> TlsFiles:
    return TlsFiles(cafile=ident.ca_path, certfile=ident.cert_path, keyfile=ident.key_path)
