"""The identity commands end to end on a temp directory (Typer's runner, real files and SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.deploy.mosquitto import broker_profile, render_mosquitto_conf

runner = CliRunner()
CSV = "device_id,serial,model,ip,mac,sim\nedge-node-001,SN12345,NX-500,10.0.10.21,aa:bb:cc:dd:ee:ff,SIM-001\n"


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_an_operator_inits_the_ca_imports_the_inventory_and_issues_a_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run("ca", "init", "--offline", str(tmp_path / "off"), "--ca-dir", str(tmp_path / "ca"), "--name", "d1")
    (tmp_path / "devices.csv").write_text(CSV)
    first = json.loads(run("inventory", "import", str(tmp_path / "devices.csv"), "-d", db))
    again = json.loads(run("inventory", "import", str(tmp_path / "devices.csv"), "-d", db))
    assert (first["added"], again["added"], again["unchanged"]) == (["edge-node-001"], [], 1)
    token = json.loads(run("device", "token", "SN12345", "-d", db))
    assert len(token["token"]) >= 40
    status = json.loads(run("ca", "status", "-d", db, "--ca-dir", str(tmp_path / "ca")))
    assert status["crl"]["freshness"] == "fresh"


def test_a_malformed_inventory_fails_with_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(
        CSV + "edge-node-002,SN12345,NX-500,10.0.10.22,aa:bb:cc:dd:ee:01,SIM-2\n"
    )
    result = runner.invoke(
        app, ["inventory", "import", str(tmp_path / "bad.csv"), "-d", f"sqlite:///{tmp_path / 'c.db'}"]
    )
    assert result.exit_code != 0
    assert "bad.csv:3: duplicate serial 'SN12345' (first on line 2)" in str(result.exception)


def test_broker_config_renders_the_locked_down_profile(tmp_path: Path) -> None:
    files = {n: tmp_path / n for n in ("chain.pem", "broker.crt", "broker.key", "crl.pem")}
    out = tmp_path / "broker"
    run(
        "broker", "config", "--role", "cloud", "--out", str(out), "--port", "8883",
        "--chain", str(files["chain.pem"]), "--cert", str(files["broker.crt"]),
        "--key", str(files["broker.key"]), "--crl", str(files["crl.pem"]),
        "--district", "d1",
    )  # fmt: skip
    conf = (out / "mosquitto.conf").read_text()
    expected = broker_profile(
        "cloud", out, port=8883, bind="0.0.0.0", chain=files["chain.pem"], certfile=files["broker.crt"],
        keyfile=files["broker.key"], crlfile=files["crl.pem"], user="mosquitto",
    )  # fmt: skip
    assert conf == render_mosquitto_conf(expected)
    for line in ("require_certificate true", "use_identity_as_username true", "use_username_as_clientid true",
                 "tls_version tlsv1.2", f"crlfile {files['crl.pem']}", "allow_anonymous false"):  # fmt: skip
        assert line in conf.splitlines()
    acl = (out / "acl.conf").read_text()
    assert "pattern write ce/v1/d1/%u/up/+" in acl and "pattern read ce/v1/d1/%u/down/+" in acl
