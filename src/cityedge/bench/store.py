"""`cityedge bench store`: insert throughput of the cloud store (records/s, one transaction
per batch), then the same batches again to time the duplicate path."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from cityedge.cloud.store import IngestRecord, RecordStore
from cityedge.protocol import Envelope, uuid7

__all__ = ["run_store_bench"]


def bench_records(count: int, now: datetime, node: str = "bench-node") -> list[IngestRecord]:
    base_ms = int(now.timestamp() * 1000)
    return [
        IngestRecord.from_envelope(
            Envelope(
                id=str(uuid7(base_ms + i)), node=node, stream="telemetry", kind="count", ts=now, seq=i + 1,
                body={"lane": i % 4, "count": i % 17, "speed": 13.5},
            ),
            "bench",
        )
        for i in range(count)
    ]  # fmt: skip


def run_store_bench(db: str | None, records: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = db or f"sqlite:///{tmp}/bench.db"
        recs = bench_records(records, datetime.now(UTC))
        with RecordStore.open(url) as store:
            rates = {}
            for phase in ("insert", "duplicates"):
                started = time.perf_counter()
                for k in range(0, records, batch):
                    store.insert(recs[k : k + batch], datetime.now(UTC))
                rates[phase] = records / (time.perf_counter() - started)
            backend = store.url.split(":")[0]
    return {
        "bench": "store", "backend": backend, "records": records, "batch": batch,
        "records_per_s": round(rates["insert"]), "duplicate_records_per_s": round(rates["duplicates"]),
    }  # fmt: skip
