"""The suite on several seed offsets: pooled figures, per-offset counts, intervals, worker processes."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.protocol.vision import INCIDENT_TYPES
from cityedge.sim import evaluate as ev
from cityedge.sim.evaluate import ScenarioResult, _match
from cityedge.sim.scenarios import preset
from cityedge.sim.scene import Scenario
from tests.sim.test_evaluate import found, truth

SIZE = (640, 360)  # far_320 keeps its own 320x180
COUNTS = ("ground_truth", "true_positives", "false_positives")


@pytest.fixture(scope="module")
def two_seeds() -> dict[str, Any]:
    """far_320, one slot, on offsets 3000 and 4000, in this process."""
    return ev.evaluate_seeds(["far_320"], slots=1, size=SIZE, seed_offset=3000, seeds=2, jobs=1)


def test_wilson95_matches_known_intervals_and_is_none_without_trials() -> None:
    assert ev.wilson95(35, 35) == pytest.approx([0.9011, 1.0], abs=1e-4)
    assert ev.wilson95(0, 35) == pytest.approx([0.0, 0.0989], abs=1e-4)
    low, high = ev.wilson95(17, 34) or (0.0, 0.0)  # symmetric about 0.5
    assert low == pytest.approx(1 - high, abs=1e-4)
    assert (low, high) == pytest.approx((0.3407, 0.6593), abs=1e-4)
    assert ev.wilson95(0, 0) is None


def test_the_score_carries_the_interval_of_precision_and_recall() -> None:
    gts = [truth("wrong_way", "a", 10, 12), truth("wrong_way", "b", 50, 52)]
    hits = [found("wrong_way", "a", 11), found("wrong_way", "b", 20), found("wrong_way", "c", 30)]
    result = ScenarioResult(Scenario(name="t", seed=1, seconds=3600), gts, hits, 36000, 3600.0, 1.0)
    result.matches = _match(gts, hits)
    types = ev.score([result])["types"]
    assert types["wrong_way"]["ci95"] == {"prec": ev.wilson95(1, 3), "rec": ev.wilson95(1, 2)}
    assert types["wrong_way"]["ci95"]["prec"] == pytest.approx([0.0615, 0.7923], abs=1e-4)
    assert types["congestion"]["ci95"] == {"prec": None, "rec": None}  # none staged, none found


def test_the_offsets_step_by_the_stride_and_each_is_scored_on_its_own_seed(
    two_seeds: dict[str, Any],
) -> None:
    assert ev.SEED_STRIDE == 1000
    assert two_seeds["seed_offsets"] == [3000, 4000]
    assert [s["seed_offset"] for s in two_seeds["per_seed"]] == [3000, 4000]
    assert list(two_seeds["scenarios"]) == ["far_320@3000", "far_320@4000"]
    alone = ev.evaluate([preset("far_320", slots=1, size=SIZE, seed_offset=4000)])
    for kind in INCIDENT_TYPES:
        figures = two_seeds["per_seed"][1]["types"][kind]
        assert {k: figures[k] for k in COUNTS} == {k: alone["types"][kind][k] for k in COUNTS}
        assert (figures["p"], figures["r"]) == (
            alone["types"][kind]["precision"],
            alone["types"][kind]["recall"],
        )


def test_the_pooled_counts_are_the_sums_of_the_per_seed_counts(two_seeds: dict[str, Any]) -> None:
    for kind in INCIDENT_TYPES:
        pooled = two_seeds["types"][kind]
        for k in COUNTS:
            assert pooled[k] == sum(s["types"][kind][k] for s in two_seeds["per_seed"]), (kind, k)
        assert pooled["ground_truth"] == 2  # one slot stages one incident of each type per seed
    assert two_seeds["frames"] == 2 * 720  # (12 s lead + 55 s slot + 5 s) x 10 fps per seed


def test_worker_processes_give_the_serial_results_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    pools: list[int | None] = []

    class Recording(ProcessPoolExecutor):
        def __init__(self, max_workers: int | None = None, **kw: Any) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, **kw)

    monkeypatch.setattr(ev, "ProcessPoolExecutor", Recording)
    scenarios = [preset("far_320", slots=1, seed_offset=offset) for offset in (0, 1000)]
    serial = ev.run_all(scenarios, jobs=1)
    assert pools == []
    parallel = ev.run_all(scenarios, jobs=2)
    assert pools == [2]
    assert [r.scenario for r in parallel] == scenarios
    assert all(r.found for r in serial)
    for a, b in zip(serial, parallel, strict=True):
        assert (a.truth, a.found, a.matches, a.frames) == (b.truth, b.found, b.matches, b.frames)


def test_default_jobs_is_one_per_cpu_at_most_one_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev.os, "cpu_count", lambda: 8)
    assert [ev.default_jobs(n) for n in (1, 3, 20)] == [1, 3, 8]
    monkeypatch.setattr(ev.os, "cpu_count", lambda: None)
    assert ev.default_jobs(5) == 1


def _keys(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in [f"{path}/{k}", *_keys(v, f"{path}/{k}")]]
    if isinstance(value, list):
        return [p for v in value for p in _keys(v, path)]
    return []


def test_the_command_runs_several_seeds_in_workers_and_prints_the_new_keys(two_seeds: dict[str, Any]) -> None:
    args = ["eval", "camera", "--json", "--slots", "1", "--scenario", "far_320", "--seed-offset", "3000"]
    result = CliRunner().invoke(app, [*args, "--seeds", "2", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("suite", "slots", "size", "seed_offset", "fps", "camera_hours", "frames", "elapsed_s"):
        assert key in report, key
    assert report["wall_s"] > 0
    assert report["seed_offsets"] == [3000, 4000]
    assert report["types"] == two_seeds["types"]
    assert report["per_seed"] == two_seeds["per_seed"]
    assert set(report["scenarios"]) == {"far_320@3000", "far_320@4000"}
    # "precision" and "recall" name the pooled figures only (per offset they are p and r), so a
    # reader of the report cannot take one offset's figure for the result
    named = [
        p for p in _keys(report) if "precision" in p.rsplit("/", 1)[1] or "recall" in p.rsplit("/", 1)[1]
    ]
    assert sorted(named) == sorted(f"/types/{k}/{m}" for k in INCIDENT_TYPES for m in ("precision", "recall"))
