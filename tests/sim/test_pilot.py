"""The one-machine pilot, as a new user runs it: on Mosquitto with mTLS, and on the embedded broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.sim.pilot import PilotOptions, run_pilot

from ..support.services import require_mosquitto


@pytest.mark.mosquitto
def test_pilot_on_mosquitto_with_mtls_stores_everything_once_through_an_outage(tmp_path: Path) -> None:
    require_mosquitto()
    report = run_pilot(
        PilotOptions(
            seconds=6,
            telemetry_per_s=100,
            incidents_per_min=120,
            outage_at_s=2,
            outage_for_s=2,
            broker="mosquitto",
            workdir=tmp_path,
        )
    )
    assert report.broker == "mosquitto" and report.tls
    assert report.link_cuts == 1
    assert report.committed["telemetry"] > 300 and report.committed["events"] > 0
    assert report.stored == report.committed
    assert (report.lost, report.pending, report.order_violations) == (0, 0, 0)
    assert report.passed


# amqtt leaks a transport when a client vanishes mid-handshake (the pilot cuts the link).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pilot_falls_back_to_the_embedded_broker_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "pilot",
            "--seconds",
            "4",
            "--outage-at",
            "1.5",
            "--outage-for",
            "1",
            "--broker",
            "embedded",
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "embedded amqtt broker" in result.output
    report = json.loads(out.read_text())
    assert report["broker"] == "embedded" and report["tls"] is False
    assert report["stored"] == report["committed"] and report["lost"] == 0 and report["passed"]
