"""Prometheus metrics of the ingest consumer (`cityedge_ingest_*`), on a registry passed in.

Each consumer gets its own registry unless the process hands it the global one, so tests
can run several consumers in one process.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["IngestMetrics"]


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # prometheus_client joins namespace, subsystem and name: cityedge_ingest_<name>.
        common: dict[str, Any] = {"namespace": "cityedge", "subsystem": "ingest", "registry": registry}
        self.records = Counter("records", "Records stored (first arrival).", ["stream"], **common)
        self.duplicates = Counter(
            "duplicates", "Records already stored (redeliveries).", ["stream"], **common
        )
        self.messages = Counter(
            "messages", "Messages received from the broker (redeliveries included).", **common
        )
        self.batches = Counter("batches", "Messages whose records were committed.", **common)
        self.store_failures = Counter(
            "store_failures", "Store writes that failed and were retried.", **common
        )
        self.reconnects = Counter("reconnects", "Broker connections made after the first.", **common)
        self.insert_seconds = Histogram(
            "insert_seconds",
            "Time to commit one group of messages.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            **common,
        )
        self.quarantined = Counter(
            "quarantined",
            "Records (or whole messages) that could not be stored, kept in the quarantine, by reason.",
            ["reason"],
            **common,
        )
        self.store_acks = Counter("store_acks", "Store acknowledgements published to nodes.", **common)
        self.connected = Gauge("connected", "1 while connected to the broker.", **common)
