"""Helpers for end-to-end tests: synthetic load, waiting for the store to settle, and the
exactly-once check every end-to-end test ends with."""

from __future__ import annotations

import time
from pathlib import Path

from cityedge.cloud.store import RecordStore
from cityedge.edge.outbox import Outbox
from cityedge.protocol.health import WILL_STREAM

from .stack import NODE, Proc, Stack, wait_until


def synthetic(limit: int, rate: float) -> dict[str, object]:
    return {"synthetic": {"telemetry_per_s": rate, "incidents_per_min": rate * 6, "limit": limit}}


def settle(stack: Stack, at_least: int, timeout: float = 60.0) -> None:
    """Wait until the store has at least `at_least` records and stopped growing."""
    store = RecordStore.open(stack.db_url)
    try:
        last, stable_since = -1, time.monotonic()

        def settled() -> bool:
            nonlocal last, stable_since
            n = store.counts().get("total", 0)
            if n != last:
                last, stable_since = n, time.monotonic()
            return n >= at_least and time.monotonic() - stable_since > 2.0

        try:
            wait_until(settled, timeout, f"the store to settle at >= {at_least} records")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it has {last}") from None
    finally:
        store.close()


def assert_exactly_once(stack: Stack, agent_dir: Path, *, arrival_order: bool = True) -> dict[str, int]:
    """Every committed record stored once, none missing, and none left on the node. With one
    ingest replica and a broker that loses nothing, arrival order is seq order per stream; when
    records go again (a broker that forgot them, replicas committing concurrently), the stored
    seqs are still exactly 1..N, and seq gives the order."""
    wait_until(lambda: _left_on_node(agent_dir) == 0, 30, "the store's acknowledgements to empty the outbox")
    ob = Outbox.open(agent_dir / "outbox.db")
    try:
        stats = ob.stats()
    finally:
        ob.close()
    assert stats.total_records == 0, f"records left on the node: {stats}"
    store = RecordStore.open(stack.db_url)
    try:
        # the broker's last-will records (stream `will`) are the broker's, not the node's
        records = [r for r in store.records(node=NODE) if r.stream != WILL_STREAM]
    finally:
        store.close()
    by_stream: dict[str, list[int]] = {}
    for r in records:
        by_stream.setdefault(r.stream, []).append(r.seq)
    committed = {name: s.last_seq for name, s in stats.streams.items() if s.last_seq}
    assert set(by_stream) == set(committed)
    for stream, last_seq in committed.items():
        seqs = by_stream[stream] if arrival_order else sorted(by_stream[stream])
        assert seqs == list(range(1, last_seq + 1)), (
            f"{stream}: stored seqs are not exactly 1..{last_seq} in order"
        )
    assert len({r.id for r in records}) == len(records)
    return {s: len(v) for s, v in by_stream.items()}


def _left_on_node(agent_dir: Path) -> int:
    ob = Outbox.open(agent_dir / "outbox.db")
    try:
        return ob.stats().total_records
    finally:
        ob.close()


def finish(
    stack: Stack, agent: Proc, at_least: int, *, arrival_order: bool = True, timeout: float = 60.0
) -> dict[str, int]:
    settle(stack, at_least, timeout)
    agent.stop()
    return assert_exactly_once(stack, stack.tmp / NODE, arrival_order=arrival_order)
