"""The judge's statistics against textbook values."""

from __future__ import annotations

import pytest

from cityedge.sim.pilot.stats import percentile, poisson_interval, wilson_interval


def test_percentiles_interpolate_like_numpy() -> None:
    assert percentile([], 99) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)


def test_wilson_interval_holds_at_the_edges() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(48, 48)
    assert high == 1.0 and low == pytest.approx(0.9259, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_exact_poisson_interval_matches_the_tables() -> None:
    low, high = poisson_interval(0)
    assert low == 0.0 and high == pytest.approx(3.689, abs=1e-3)
    low, high = poisson_interval(1)
    assert low == pytest.approx(0.0253, abs=1e-4) and high == pytest.approx(5.572, abs=1e-3)
    low, high = poisson_interval(10)
    assert low == pytest.approx(4.795, abs=1e-3) and high == pytest.approx(18.39, abs=1e-2)
