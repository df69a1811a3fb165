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
    ("cityedge_outbox_inflight_records", "Records sent and not yet acknowledged."),
    ("cityedge_outbox_oldest_age_seconds", "Age of the oldest record in the outbox (0 when empty)."),
    ("cityedge_outbox_last_seq", "Last sequence number given to a record of the stream."),
)
_COUNTERS: Final = (
    ("cityedge_outbox_appends", "Records committed since the agent started."),
    ("cityedge_outbox_acks", "Records acknowledged by the broker and deleted."),
    ("cityedge_outbox_duplicates", "Appends ignored because the record id was already queued."),
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
            values = (s.pending + s.inflight, s.bytes, s.inflight, s.oldest_age_s or 0.0, s.last_seq)
            for gauge, value in zip(gauges, values, strict=True):
                gauge.add_metric([name], value)
            for counter, total in zip(counters, (s.appended, s.acked, s.duplicates), strict=True):
                counter.add_metric([name], total)
        drops = CounterMetricFamily(
            "cityedge_outbox_dropped",
            "Records the outbox dropped or refused, by stream and reason (kept across restarts).",
            labels=["stream", "reason"],
        )
        for (stream, reason), n in sorted(stats.drops.items()):
            drops.add_metric([stream, reason], n)
        yield from gauges
        yield from counters
        yield drops


def register_outbox_metrics(outbox: Outbox, registry: CollectorRegistry = REGISTRY) -> OutboxCollector:
    """Expose `outbox` on `registry` (the global one unless a process or test passes its own)."""
    collector = OutboxCollector(outbox)
    registry.register(collector)
    return collector
