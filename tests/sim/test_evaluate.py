"""Accuracy on the synthetic test bed, and the scoring that measures it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.edge.camera.rules import RuleConfig
from cityedge.protocol.vision import Incident, IncidentType
from cityedge.sim.evaluate import ScenarioResult, _match, evaluate, score
from cityedge.sim.scenarios import PRESETS, preset
from cityedge.sim.scene import GroundTruthIncident, Scenario

T0 = 1_767_225_600.0


def found(kind: IncidentType, lane: str, at: float) -> Incident:
    return Incident(
        type=kind, camera="c", lane=lane, started_at=T0 + at - 10, detected_at=T0 + at, position=(0, 0)
    )


def truth(kind: str, lane: str, start: float, end: float) -> GroundTruthIncident:
    return GroundTruthIncident(kind, lane, T0 + start, T0 + end, (0.0, 0.0))


def test_scoring_counts_duplicates_and_strays_as_false_alarms_and_measures_delay() -> None:
    gts = [truth("stopped_vehicle", "a", 10, 40), truth("stopped_vehicle", "b", 50, 70)]
    hits = [
        found("stopped_vehicle", "a", 21),  # true, 11 s after the start
        found("stopped_vehicle", "a", 30),  # the same incident again: a duplicate
        found("stopped_vehicle", "b", 20),  # before that lane's incident: a stray
    ]
    result = ScenarioResult(Scenario(name="t", seed=1, seconds=3600), gts, hits, 36000, 3600.0, 1.0)
    result.matches = _match(gts, hits)
    report = score([result], RuleConfig())["types"]["stopped_vehicle"]
    assert report["true_positives"] == 1
    assert report["false_positives"] == 2
    assert report["precision"] == pytest.approx(1 / 3, abs=1e-3)
    assert report["recall"] == 0.5
    assert report["false_alarms_per_camera_hour"] == 2.0
    assert report["mean_delay_s"] == pytest.approx(11.0)
    assert report["delay_over_threshold_s"] == pytest.approx(1.0)


def test_the_reduced_suite_meets_the_accuracy_targets() -> None:
    """Every preset, two slots each (2 incidents of each type per preset), at the eval's 640x360
    (far_320 at its own 320x180)."""
    report = evaluate(preset(name, slots=2) for name in PRESETS)
    for kind, figures in report["types"].items():
        assert figures["ground_truth"] == 2 * len(PRESETS), kind
        assert figures["recall"] >= 0.95, (kind, figures)
        assert figures["precision"] >= 0.95, (kind, figures)
        assert abs(figures["delay_over_threshold_s"]) <= 2.0, (kind, figures)


def test_the_command_prints_one_json_object() -> None:
    result = CliRunner().invoke(app, ["eval", "camera", "--json", "--slots", "1", "--scenario", "clear_day"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["suite"] == ["clear_day"]
    assert set(report["types"]) == {"stopped_vehicle", "wrong_way", "congestion"}
    assert report["types"]["wrong_way"]["ground_truth"] == 1
    assert report["size"] == [640, 360]
    assert report["seed_offsets"] == [0]  # one seed by default, its scenarios keyed by name alone
    assert list(report["scenarios"]) == ["clear_day"]
    assert [s["seed_offset"] for s in report["per_seed"]] == [0]
