"""`cityedge bench store` reports what it claims: the store's rate, the duplicate path, and on
PostgreSQL a raw COPY of the same rows with the ratio between the two."""

from __future__ import annotations

import psycopg

from cityedge.bench.store import run_store_bench
from tests.support.cloud import pg_admin


def test_on_sqlite_it_reports_rates_and_no_copy_baseline() -> None:
    result = run_store_bench(None, records=300, batch=100, runs=1)
    assert (result["backend"], result["records"], result["transactions"]) == ("sqlite", 300, 3)
    assert result["records_per_s"] > 0 and result["duplicate_records_per_s"] > 0
    assert result["copy_records_per_s"] is None and result["copy_ratio"] is None


def test_on_postgresql_it_compares_with_a_raw_copy_and_leaves_no_schema_behind(pg_url: str) -> None:
    def schemas() -> set[str]:
        with psycopg.connect(pg_admin(pg_url)) as conn:
            rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench_%'").fetchall()
        return {r[0] for r in rows}

    before = schemas()
    result = run_store_bench(pg_url, records=500, batch=200, runs=2)
    assert (result["backend"], result["transactions"], result["runs"]) == ("postgresql+psycopg", 3, 2)
    assert result["copy_records_per_s"] > 0 and result["commit_ms"] > 0
    assert result["copy_ratio"] > 0
    assert schemas() == before
