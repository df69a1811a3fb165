"""Prometheus metrics of the outbox (`cityedge_outbox_*`), read from `Outbox.stats()` at scrape time.

Depth, oldest age and drops come from the outbox itself, so a scrape always shows what is on
disk (drop counters persist across restarts) and no code path can forget to count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cityedge.edge.outbox.driver import Outbox

__all__ = ["OutboxCollector", "register_outbox_metrics"]


_GAUGES: Final = (
    ("cityedge_outbox_depth_records", "Records in the outbox (pending and in flight)."),
    ("cityedge_outbox_depth_bytes", "Payload bytes in the outbox."),
    ("cityedge_outbox_inflight_records", "Records published and not yet acknowledged by the broker."),
    ("cityedge_outbox_sent_records", "Records the broker has, not yet acknowledged by the cloud store."),
    ("cityedge_outbox_oldest_age_seconds", "Age of the oldest record in the outbox (0 when empty)."),
    (
        "cityedge_outbox_oldest_sent_age_seconds",
        "How long the oldest record the broker has waits for the store's acknowledgement (0: none).",
    ),
    ("cityedge_outbox_last_seq", "Last sequence number given to a record of the stream."),
)
_COUNTERS: Final = (
    ("cityedge_outbox_appends", "Records committed since the agent started."),
    ("cityedge_outbox_acks", "Records acknowledged by the cloud store and deleted."),
    ("cityedge_outbox_duplicates", "Appends ignored because the record id was already queued."),
    ("cityedge_outbox_resent", "Records sent again because the store did not acknowledge them in time."),
)


class OutboxCollector(Collector):
    """Reads one outbox's stats on every scrape."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def collect(self) -> Iterator[Metric]:
        stats = self.outbox.stats()
        gauges = [GaugeMetricFamily(name, doc, labels=["stream"]) for name, doc in _GAUGES]
        counters = [CounterMetricFamily(name, doc, labels=["stream"]) for name, doc in _COUNTERS]
        for name, s in sorted(stats.streams.items()):
            values = (
                s.records, s.bytes, s.inflight, s.sent, s.oldest_age_s or 0.0, s.oldest_sent_age_s or 0.0,
                s.last_seq,
            )  # fmt: skip
            for gauge, value in zip(gauges, values, strict=True):
                gauge.add_metric([name], value)
            for counter, total in zip(counters, (s.appended, s.acked, s.duplicates, s.resent), strict=True):
                counter.add_metric([name], total)
        drops = CounterMetricFamily(
            "cityedge_outbox_dropped",
            "Records the outbox dropped or refused, by stream and reason (kept across restarts).",
            labels=["stream", "reason"],
        )
        for (stream, reason), n in sorted(stats.drops.items()):
            drops.add_metric([stream, reason], n)
        quarantined = CounterMetricFamily(
            "cityedge_door_quarantined",
            "Messages refused at the node's door for what they are, kept in quarantine, by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(self.outbox.quarantine_counts().items()):
            quarantined.add_metric([reason], n)
        yield from gauges
        yield from counters
        yield drops
        yield quarantined


def register_outbox_metrics(outbox: Outbox, registry: CollectorRegistry = REGISTRY) -> OutboxCollector:
    """Expose `outbox` on `registry` (the global one unless a process or test passes its own)."""
    collector = OutboxCollector(outbox)
    registry.register(collector)
    return collector
