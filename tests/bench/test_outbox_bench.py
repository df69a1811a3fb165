"""`cityedge bench outbox` measures what it claims: every appended record drained."""

from __future__ import annotations

from pathlib import Path

from cityedge.bench.outbox import run


def test_the_outbox_bench_drains_everything_it_appended(tmp_path: Path) -> None:
    result = run(300, batch=50, directory=tmp_path)
    assert (result["records"], result["drained"], result["synchronous"]) == (300, 300, "FULL")
    assert result["append_records_per_s"] > 0 and result["claim_ack_records_per_s"] > 0
