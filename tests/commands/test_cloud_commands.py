"""`cityedge cloud migrate` and `cityedge cloud records`: inspect what arrived."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.cloud.store import RecordStore, head_revision
from tests.support.cloud import record
from tests.support.services import require_mosquitto

runner = CliRunner()


def test_migrate_reports_the_revision_and_is_safe_to_repeat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    for _ in range(2):
        result = runner.invoke(app, ["cloud", "migrate", "--db", url])
        assert result.exit_code == 0, result.output
        head = head_revision()
        assert f"at revision {head} (head {head})" in result.output


def test_records_prints_json_lines_in_arrival_order_filtered_by_node_and_stream(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    wanted = [record("telemetry", seq=1), record("telemetry", seq=2)]
    with RecordStore.open(url) as store:
        store.insert([record("events"), wanted[0], record("telemetry", node="edge-node-002"), wanted[1]],
                     datetime.now(UTC))  # fmt: skip
    result = runner.invoke(
        app, ["cloud", "records", "--db", url, "--node", "edge-node-001", "--stream", "telemetry", "--json"]
    )
    assert result.exit_code == 0, result.output
    docs = [msgspec.json.decode(line) for line in result.output.splitlines()]
    assert [(d["id"], d["seq"], d["node"]) for d in docs] == [(r.id, r.seq, r.node) for r in wanted]


def test_records_prints_a_table_with_the_counts_per_stream(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    with RecordStore.open(url) as store:
        store.insert([record("events"), record("telemetry")], datetime.now(UTC))
    result = runner.invoke(app, ["cloud", "records", "--db", url])
    assert result.exit_code == 0, result.output
    assert "stored: events 1, telemetry 1, total 2" in result.output


def test_bench_store_prints_one_json_object_with_its_rate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    args = ["bench", "store", "--db", url, "--records", "400", "--batch", "100", "--runs", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = msgspec.json.decode(result.stdout.strip().splitlines()[-1])
    assert out["bench"] == "store" and out["records"] == 400 and out["records_per_s"] > 0
    with RecordStore.open(url) as store:
        assert store.counts() == {"telemetry": 400, "total": 400}


def test_bench_ingest_stores_every_record_it_published_through_mosquitto() -> None:
    require_mosquitto()
    result = runner.invoke(app, ["bench", "ingest", "--records", "500", "--batch", "100"])
    assert result.exit_code == 0, result.output
    out = msgspec.json.decode(result.stdout.strip().splitlines()[-1])
    assert (out["bench"], out["records"], out["stored"]) == ("ingest", 500, 500)
    assert out["records_per_s"] > 0
