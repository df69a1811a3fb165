"""`cityedge pilot` end to end, as a user runs it, on short specs (tens of seconds each).

Each run is the real district: the CA and enrollment over HTTPS, a cloud broker, ingest into
SQLite, one process per node with synthetic cameras through the camera pipeline, impaired
links. The full default spec (about three minutes) is run by `../shared/checks` and by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ...support.services import require, require_mosquitto

pytestmark = pytest.mark.slow

# Cameras send 10 fps; the latency and throughput targets are loose, so a busy shared machine
# does not decide these tests (the default spec's real targets are run by the checks).
HEAD = """\
Title: {title}
Latency-SLO: {latency} local
Throughput: 5 fps
Retention: 24h raw, metadata -> cloud
AcceptanceTest: Controlled run 48h, {incidents} incidents, <5% FP
cameras_per_node: 1
camera_fps: 10 fps
incidents: {{stopped_vehicle: 1}}
run: 42s
"""
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def pilot(tmp: Path, spec: str, *args: str) -> tuple[int, dict[str, Any], str]:
    (tmp / "spec.yaml").write_text(spec)
    cmd = [sys.executable, "-m", "cityedge.cli", "pilot", "--spec", str(tmp / "spec.yaml"),
           "--report", str(tmp / "report"), "--json", str(tmp / "out.json"),
           "--workdir", str(tmp / "work"), *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, check=False)
    out = proc.stdout + proc.stderr
    assert (tmp / "out.json").exists(), out[-3000:]
    return proc.returncode, json.loads((tmp / "out.json").read_text()), out


def slo(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["slos"] if s["name"] == name)


@pytest.fixture(scope="module")
def two_links(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str, Path]:
    """Mosquitto, two nodes of one camera: node-2's link has 500 ms more one-way latency."""
    require_mosquitto()
    tmp = tmp_path_factory.mktemp("two-links")
    spec = HEAD.format(title="Two links", latency="1000ms", incidents=2)
    spec += "nodes: 2\nnetwork:\n  profile: clean\n  links: {node-2: {latency: 501ms}}\n"
    rc, report, out = pilot(tmp, spec, "--broker", "mosquitto")
    return rc, report, out, tmp


def test_the_pilot_passes_on_mosquitto_and_writes_both_reports(two_links: Any) -> None:
    rc, report, out, tmp = two_links
    assert rc == 0, out[-3000:]
    assert report["verdict"] == "pass" and report["lost"] == 0 and report["duplicates"] == 0
    assert report["broker"] == "mosquitto" and "Mosquitto with mutual TLS" in out
    assert {s["name"] for s in report["slos"]} >= {"latency", "throughput", "cloud_sync", "records_lost"}
    for s in report["slos"]:
        assert {"name", "target", "measured", "unit", "method", "verdict"} <= set(s)
    assert (tmp / "report" / "report.html").exists() and (tmp / "report" / "report.json").exists()
    assert "verdict: PASS" in out and "report.html" in out


def test_staged_incidents_are_counted_against_ground_truth(two_links: Any) -> None:
    _rc, report, _out, _tmp = two_links
    incidents = report["figures"]["incidents"]
    assert incidents["ground_truth"] == 2  # one stopped vehicle per camera, two cameras
    assert incidents["true_positives"] == 2 and incidents["false_positives"] == 0
    assert slo(report, "incidents_detected")["measured"] == 2


def test_a_known_delay_on_a_link_moves_its_sync_delay_by_that_much(two_links: Any) -> None:
    _rc, report, _out, _tmp = two_links
    fast, slow = (n["sync_p50_s"] for n in report["per_node"])
    assert 0.45 <= slow - fast <= 0.75, report["per_node"]


def test_the_report_renders_in_chromium_with_data_in_every_plot(two_links: Any) -> None:
    chromium = Path("/usr/bin/chromium")
    require(chromium.exists(), "Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    _rc, _report, _out, tmp = two_links
    page_path = tmp / "report" / "report.html"
    text = page_path.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text) and "<link" not in text  # self-contained
    ARTIFACTS.mkdir(exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=args)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(page_path.as_uri())
        assert "PASS" in page.inner_text("#verdict")
        for plot in ("plot-latency", "plot-sync", "plot-incidents"):
            figure = page.locator(f"#{plot}")
            assert int(figure.get_attribute("data-points") or 0) > 0, plot
            box = figure.locator("svg").bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150, plot
            assert figure.locator("svg path").count() > 10, plot
        page.screenshot(path=str(ARTIFACTS / "pilot-report.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "pilot-report.png").stat().st_size > 20_000


def test_the_embedded_broker_passes_a_flaky_network_with_nothing_lost(tmp_path: Path) -> None:
    spec = HEAD.format(title="Flaky, embedded", latency="1000ms", incidents=1) + "nodes: 1\n"
    rc, report, out = pilot(tmp_path, spec, "--broker", "embedded", "--network", "flaky")
    assert rc == 0, out[-3000:]
    assert report["broker"] == "embedded" and "embedded (iotcore" in out
    assert report["verdict"] == "pass" and report["lost"] == 0 and report["duplicates"] == 0
    assert len(report["outages"]) == 3  # the flaky profile's three outages
    drain = slo(report, "backlog_drain")
    assert len(drain["detail"]["outages"]) == 3 and drain["verdict"] == "pass"
    assert slo(report, "cloud_sync")["detail"]["excluded_outage_and_drain"] > 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert "link outage" in html  # the shaded outages' legend in the sync-delay plot


def test_an_impossible_spec_fails_naming_the_slo_and_a_false_alarm_source_lowers_precision(
    tmp_path: Path, two_links: Any
) -> None:
    spec = HEAD.format(title="Impossible, with decoys", latency="1ms", incidents=1)
    spec += "nodes: 1\nnetwork: {profile: clean}\ndecoys: {stopped_vehicle: 1}\n"
    rc, report, out = pilot(tmp_path, spec)
    assert rc == 1 and report["verdict"] == "fail"
    latency = slo(report, "latency")
    assert latency["verdict"] == "fail" and latency["shortfall"].startswith("over the target by")
    assert "latency" in report["failed"] and "FAIL" in out
    # the decoy (a stop the ground truth calls no incident) is reported: precision falls
    before = two_links[1]["figures"]["incidents"]["precision"]
    after = report["figures"]["incidents"]["precision"]
    assert before == 1.0 and after is not None and after < 0.5
    assert slo(report, "false_positive_rate")["verdict"] == "fail"
