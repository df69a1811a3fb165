"""`cityedge bench outbox`: throughput on this disk, batched appends, then claim + store ack.

`run(n)` returns one dict (`cityedge bench outbox` prints it as JSON). Appends use
synchronous=FULL, as in production: one fsync per append batch; the store's acknowledgement
deletes without waiting for the disk (a lost one only costs a resend).
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityedge.edge.outbox import Outbox, OutboxLimits
from cityedge.protocol.acks import StreamAck, seq_ranges
from cityedge.protocol.envelope import Envelope
from cityedge.protocol.ids import uuid7

__all__ = ["run"]


def run(n: int = 20_000, batch: int = 100, directory: Path | None = None) -> dict[str, Any]:
    """Append `n` telemetry-sized records in batches of `batch`, then drain them with claim+ack."""
    envs = _envelopes(n)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        limits = OutboxLimits(min_free_disk_bytes=0)
        with Outbox.open(Path(tmp) / "bench-outbox.db", limits=limits) as ob:
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(0, n, batch):
                ob.append_many(envs[i : i + batch])
            append_s, append_cpu = time.perf_counter() - start, time.process_time() - cpu
            start, cpu = time.perf_counter(), time.process_time()
            drained = 0
            while (claimed := ob.claim(batch, 256 * 1024)) is not None:
                ob.sent(claimed.stream, claimed.seqs)
                ack = StreamAck(stream=claimed.stream, ranges=seq_ranges(claimed.seqs), epoch=ob.epoch)
                drained += ob.stored(ack)
            drain_s, drain_cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "bench": "outbox",
        "records": n,
        "batch": batch,
        "synchronous": "FULL",
        "append_records_per_s": round(n / append_s),
        "claim_ack_records_per_s": round(drained / drain_s),
        # CPU per record depends less on what else runs on a shared machine than wall time does.
        "append_cpu_us_per_record": round(append_cpu / n * 1e6, 1),
        "claim_ack_cpu_us_per_record": round(drain_cpu / max(1, drained) * 1e6, 1),
        "drained": drained,
    }


def _envelopes(n: int) -> list[Envelope]:
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    # Ids as producers make them at 20,000 records/s: time-ordered, random within a millisecond.
    return [
        Envelope(
            id=str(uuid7(ms + i // 20)),
            node="bench-node",
            stream="telemetry",
            kind="counts",
            ts=now,
            body={"lane": i % 4, "vehicles": i % 17, "speed_kmh": 31.5},
            ver={"agent": "bench"},
        )
        for i in range(n)
    ]


def run_medians(records: int, runs: int) -> dict[str, Any]:
    """`run` several times; the medians of its figures."""
    import statistics

    results = [run(records) for _ in range(runs)]
    keys = [k for k, v in results[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in results), 1) for k in keys}
    return {**out, "runs": runs}
