"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) over a running test
fleet: the fleet view lists the nodes, a node killed in the test turns offline on the page within
4 heartbeat intervals without a reload, an injected incident appears in the live feed, and a
viewer cannot reach admin actions. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cityedge.protocol import Envelope, encode_batch, encode_envelope, up_topic, uuid7
from tests.support.cloud import Device
from tests.support.fleet import OPERATOR_TOKEN, Fleet, start_fleet
from tests.support.services import require
from tests.support.stack import DISTRICT

NODES = ["edge-node-001", "edge-node-002", "edge-node-003"]
HEARTBEAT_S = 2.0
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = start_fleet(tmp_path_factory.mktemp("fleet"), NODES, heartbeat_s=HEARTBEAT_S)
    try:
        for node in NODES:
            f.wait_status(node, "online", 30)
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(
        Path(CHROMIUM).exists() or shutil.which("chromium") is not None, "chromium (apt-get install chromium)"
    )
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def logged_in(browser: Any, fleet: Fleet, token: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(fleet.dashboard.url + "ui/login")
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_url("**/ui/")
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def status_cell(node: str) -> str:
    return f'#fleet tr[data-node="{node}"] [data-role="status"]'


def test_the_fleet_view_lists_every_node_of_the_running_fleet(browser: Any, fleet: Fleet) -> None:
    page = logged_in(browser, fleet, OPERATOR_TOKEN)
    for node in NODES:
        assert page.text_content(status_cell(node)) == "online"
    assert page.text_content("#count-online") == str(len(NODES))
    assert page.locator("#map circle").count() == len(NODES)  # coordinates from the inventory
    page.wait_for_selector("#live-state.on")
    shot(page, "fleet")
    page.click(f'a[href="/ui/nodes/{NODES[0]}"]')
    page.wait_for_selector("#node-status")
    assert page.text_content("#node-status") == "online"
    assert "days left" in (page.text_content("#cert") or "")
    shot(page, "node")


def test_a_killed_node_turns_offline_on_the_page_without_a_reload(browser: Any, fleet: Fleet) -> None:
    page = logged_in(browser, fleet, OPERATOR_TOKEN)
    page.wait_for_selector("#live-state.on")
    page.evaluate("window.__notReloaded = true")
    victim = NODES[1]
    assert page.text_content(status_cell(victim)) == "online"
    fleet.agents[victim].kill()
    page.wait_for_selector(f"{status_cell(victim)}.offline", timeout=4 * HEARTBEAT_S * 1000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.text_content("#count-offline") == "1"
    shot(page, "node-offline")


def test_an_injected_incident_appears_in_the_live_feed(browser: Any, fleet: Fleet) -> None:
    page = logged_in(browser, fleet, OPERATOR_TOKEN)
    page.wait_for_selector("#live-state.on")
    page.evaluate("window.__notReloaded = true")
    reporter = "edge-node-004"  # a device with its own certificate, not running an agent
    device = Device(fleet.stack.cloud.port, fleet.stack.identity(reporter), DISTRICT)
    try:
        now = datetime.now(UTC)
        env = Envelope(
            id=str(uuid7(int(now.timestamp() * 1000))),
            node=reporter,
            stream="events",
            seq=1,
            kind="incident.wrong_way",
            ts=now,
            body={"type": "wrong_way", "camera": "cam-9", "lane": "sb-2"},
        )
        device.publish(
            up_topic(DISTRICT, reporter, "events"), encode_batch(reporter, "events", [encode_envelope(env)])
        )
        page.wait_for_selector(f'#incidents li:has-text("{reporter}/cam-9")', timeout=15_000)
    finally:
        device.close()
    assert "incident.wrong_way" in (page.text_content("#incidents li") or "")
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "incident")


def test_a_viewer_cannot_reach_admin_actions(browser: Any, fleet: Fleet) -> None:
    viewer = logged_in(browser, fleet, fleet.token("vera", "viewer"))
    assert viewer.locator("#admin-link").count() == 0
    assert viewer.text_content("#role") == "viewer"
    viewer.goto(fleet.dashboard.url + f"ui/nodes/{NODES[0]}")
    assert viewer.locator("#revoke").count() == 0
    shot(viewer, "viewer-node")
    assert viewer.goto(fleet.dashboard.url + "ui/admin").status == 403
    refused = viewer.request.post(fleet.dashboard.url + f"ui/nodes/{NODES[0]}/revoke")
    assert refused.status == 403
    refused = viewer.request.post(fleet.dashboard.url + "ui/admin/users/vera/revoke-tokens")
    assert refused.status == 403
    api = viewer.request.get(fleet.dashboard.url + "api/v1/fleet/nodes")
    assert api.status == 401  # the API wants a bearer token, not the dashboard's cookie
    assert fleet.status(NODES[0]) == "online"  # nothing was revoked

    admin = logged_in(browser, fleet, fleet.token("ada", "admin"))
    admin.click("#admin-link")
    admin.wait_for_selector("#users")
    assert "vera" in (admin.text_content("#users") or "")
    shot(admin, "admin")


def test_screenshots_are_kept_as_artifacts() -> None:
    names = {p.name for p in ARTIFACTS.glob("dashboard-*.png")} if ARTIFACTS.exists() else set()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("screenshots are checked in a single-process run only")
    assert {"dashboard-fleet.png", "dashboard-node-offline.png", "dashboard-incident.png"} <= names
