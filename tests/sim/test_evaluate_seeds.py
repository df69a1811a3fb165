"""The suite on several seed offsets: pooled figures, per-offset counts, intervals, worker processes."""

from __future__ import annotations

import pytest

from cityedge.sim import evaluate as ev
from cityedge.sim.evaluate import ScenarioResult, _match
from cityedge.sim.scene import Scenario
from tests.sim.test_evaluate import found, truth

SIZE = (640, 360)  # far_320 keeps its own 320x180
COUNTS = ("ground_truth", "true_positives", "false_positives")


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
