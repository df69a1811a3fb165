"""`cityedge bench store`: insert throughput of the cloud store (records/s, one transaction
per batch), the same batches again (the duplicate path), and on PostgreSQL a raw COPY of the
same rows in the same run, so the write path is judged against what the database can take.

Each run works in a scratch schema of its own (PostgreSQL) or a temporary file (SQLite), so
runs start from the same empty tables and leave nothing behind. The JSON holds medians.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from cityedge.cloud.store import IngestRecord, RecordStore, parse_url
from cityedge.cloud.store.pg_insert import COPIED, copy_rows
from cityedge.protocol import Envelope, uuid7

__all__ = ["bench_records", "run_store_bench"]


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


def run_store_bench(db: str | None, records: int, batch: int, runs: int = 3) -> dict[str, Any]:
    """Medians over `runs`; `copy_ratio` is the median of each run's own ratio."""
    results = [_one_run(db, records, batch, copy_first=k % 2 == 1) for k in range(runs)]
    out: dict[str, Any] = {
        "bench": "store", "backend": results[0]["backend"], "records": records, "batch": batch,
        "transactions": -(-records // batch), "runs": runs,
    }  # fmt: skip
    for key in ("records_per_s", "duplicate_records_per_s", "copy_records_per_s", "copy_ratio", "commit_ms"):
        values = [r[key] for r in results if r.get(key) is not None]
        out[key] = round(statistics.median(values), 3 if key == "copy_ratio" else 1) if values else None
    out["load_1m"] = round(os.getloadavg()[0], 1)
    return out


def _one_run(db: str | None, records: int, batch: int, copy_first: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    recs = bench_records(records, now)
    with _scratch(db) as url, RecordStore.open(url) as store:
        backend = url.split(":")[0]
        copy: dict[str, Any] = {}
        if backend.startswith("postgresql") and copy_first:
            copy = _copy_baseline(url, recs, now)
        rates = {}
        for phase in ("records_per_s", "duplicate_records_per_s"):
            _checkpoint(url)
            started = time.perf_counter()
            for k in range(0, records, batch):
                store.insert(recs[k : k + batch], now)
            rates[phase] = records / (time.perf_counter() - started)
        if backend.startswith("postgresql") and not copy_first:
            copy = _copy_baseline(url, recs, now)
    if copy:
        copy["copy_ratio"] = rates["records_per_s"] / copy["copy_records_per_s"]
    return {"backend": backend, **rates, **copy}


@contextmanager
def _scratch(db: str | None) -> Iterator[str]:
    """A store URL with empty tables: a temporary SQLite file, or a PostgreSQL schema dropped after."""
    if db is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    if parse_url(db).get_backend_name() == "sqlite":
        yield db  # the caller's file: each run's records have new ids
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(db), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = parse_url(db).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(db), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _checkpoint(url: str) -> None:
    """Write out what the previous phase left dirty, so no phase pays for another (as pgbench
    does); needs a superuser or pg_checkpoint, else skipped."""
    if not url.startswith("postgresql"):
        return
    import psycopg

    denied = psycopg.errors.InsufficientPrivilege
    with suppress(denied), psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def _copy_baseline(url: str, recs: list[IngestRecord], now: datetime) -> dict[str, float]:
    """One COPY of the same rows, in one transaction, into a table built like `records`
    (same columns, identity, keys and indexes), timed from the same records as the store's
    inserts; and what one committed row costs here."""
    import psycopg

    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("CREATE TABLE copy_baseline (LIKE records INCLUDING ALL)")
        conn.commit()
        _checkpoint(url)
        # Timed like the store: from the same IngestRecords to committed rows.
        started = time.perf_counter()
        rows = [(*row, now) for row in copy_rows(recs)]
        sql = f"COPY copy_baseline ({', '.join(COPIED)}, received_at) FROM STDIN"
        with conn.cursor() as cur, cur.copy(sql) as cp:
            for row in rows:
                cp.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        commits = []
        for _ in range(20):
            started = time.perf_counter()
            conn.execute("DELETE FROM copy_baseline WHERE arrival = (SELECT min(arrival) FROM copy_baseline)")
            conn.commit()
            commits.append(time.perf_counter() - started)
    return {"copy_records_per_s": len(rows) / elapsed, "commit_ms": statistics.median(commits) * 1000}
