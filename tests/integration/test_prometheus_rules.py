"""The shipped alert rules and Grafana dashboard against the real promtool: the rules load, their
unit tests pass (each alert firing and not firing), and every dashboard query parses."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.services import require

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "cityedge-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "cityedge-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "cityedge-district.json"


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    require(shutil.which("promtool") is not None, "promtool (apt-get install prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False, cwd=cwd)


def test_the_alert_rules_load() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    fired: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    assert alerts == fired, f"alerts never shown firing: {alerts - fired}"
    assert alerts == silent, f"alerts never shown silent: {alerts - silent}"


def test_a_broken_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    shutil.copy(RULES, tmp_path / RULES.name)
    broken = RULE_TESTS.read_text().replace('summary: "n1 is offline"', 'summary: "n1 is fine"')
    (tmp_path / RULE_TESTS.name).write_text(broken)
    assert promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path).returncode != 0


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for v in node.values() for e in _exprs(v)]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = _exprs(dashboard["panels"])
    titles = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert {"Fleet", "Camera pipeline", "Outbox", "Ingest"} <= titles
    assert len(exprs) >= 15
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"cityedge:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(("}]}]}))
    assert promtool("check", "rules", str(bad)).returncode != 0
