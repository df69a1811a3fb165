"""What the data-plane benchmarks share: a throwaway CA that issues every identity, and a
Mosquitto with an mTLS listener that trusts it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cityedge.deploy.mosquitto import MosquittoConfig
from cityedge.pki import CertificateAuthority, IssuedIdentity
from cityedge.sim.brokers import MosquittoProcess, free_port
from cityedge.transport import TlsFiles

__all__ = ["BenchBroker", "start_bench_broker", "tls_files"]


@dataclass
class BenchBroker:
    tmp: Path
    ca: CertificateAuthority
    broker: MosquittoProcess

    def identity(self, name: str) -> IssuedIdentity:
        return self.ca.issue_to_directory(
            name, self.tmp / "certs", now=datetime.now(UTC), lifetime=timedelta(hours=2)
        )


def tls_files(ident: IssuedIdentity) -> TlsFiles:
    return TlsFiles(cafile=ident.ca_path, certfile=ident.cert_path, keyfile=ident.key_path)


def start_bench_broker(tmp: Path, max_inflight: int = 1000) -> BenchBroker:
    now = datetime.now(UTC)
    ca = CertificateAuthority.create("bench root", now=now)
    server = ca.issue_to_directory(
        "broker", tmp / "certs", now=now, server_auth=True, extra_sans=("127.0.0.1",)
    )
    cfg = MosquittoConfig(
        data_dir=tmp / "broker-data", tls_port=free_port(), cafile=server.ca_path, certfile=server.cert_path,
        keyfile=server.key_path, max_inflight=max_inflight,
    )  # fmt: skip
    return BenchBroker(tmp, ca, MosquittoProcess(cfg, tmp / "broker").start())
