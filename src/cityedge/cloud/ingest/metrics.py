"""Prometheus metrics of the ingest consumer (`cityedge_ingest_*`), on a registry passed in.

Each consumer gets its own registry unless the process hands it the global one, so tests
can run several consumers in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["IngestMetrics"]


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "cityedge_ingest_records", "Records stored (first arrival).", ["stream"], registry=registry
        )
        self.duplicates = Counter(
            "cityedge_ingest_duplicates",
            "Records already stored (redeliveries).",
            ["stream"],
            registry=registry,
        )
        self.messages = Counter(
            "cityedge_ingest_messages",
            "Messages received from the broker (redeliveries included).",
            registry=registry,
        )
        self.batches = Counter(
            "cityedge_ingest_batches", "Messages whose records were committed.", registry=registry
        )
        self.store_failures = Counter(
            "cityedge_ingest_store_failures", "Store writes that failed and were retried.", registry=registry
        )
        self.reconnects = Counter(
            "cityedge_ingest_reconnects", "Broker connections made after the first.", registry=registry
        )
        self.insert_seconds = Histogram(
            "cityedge_ingest_insert_seconds",
            "Time to commit one group of messages.",
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.quarantined = Counter(
            "cityedge_ingest_quarantined",
            "Records (or whole messages) that could not be stored, kept in the quarantine, by reason.",
            ["reason"],
            registry=registry,
        )
        self.store_acks = Counter(
            "cityedge_ingest_store_acks", "Store acknowledgements published to nodes.", registry=registry
        )
        self.connected = Gauge(
            "cityedge_ingest_connected", "1 while connected to the broker.", registry=registry
        )
