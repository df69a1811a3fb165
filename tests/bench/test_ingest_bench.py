"""`cityedge bench ingest` measures what it claims: N ingest processes on one shared
subscription, every record stored exactly once, one point of the curve per consumer count."""

from __future__ import annotations

import json

import pytest

from tests.support.services import require_mosquitto
from tests.support.stack import cli


@pytest.mark.mosquitto
@pytest.mark.slow
def test_the_curve_has_a_point_per_consumer_count_and_loses_nothing() -> None:
    require_mosquitto()
    done = cli("bench", "ingest", "--records", "1200", "--batch", "100", "--consumers", "1,2")
    result = json.loads(done.stdout)
    assert [p["consumers"] for p in result["curve"]] == [1, 2]
    for point in result["curve"]:
        assert (point["stored"], point["lost"], point["duplicates"]) == (1200, 0, 0)
        assert point["records_per_s"] > 0
