"""The identity commands end to end on a temp directory (Typer's runner, real files and SQLite)."""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityedge.cli import app
from cityedge.deploy.mosquitto import BrokerInputs, broker_profile, render_mosquitto_conf

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


def test_broker_config_renders_the_locked_down_profile_with_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run("ca", "init", "--offline", str(tmp_path / "off"), "--ca-dir", str(tmp_path / "ca"), "--name", "d1")
    run("ca", "issue", "--profile", "broker", "broker", "--san", "127.0.0.1", "--out", str(tmp_path / "tls"),
        "-d", db, "--ca-dir", str(tmp_path / "ca"))  # fmt: skip
    monkeypatch.chdir(tmp_path)  # relative inputs, as an operator types them
    run(
        "broker", "config", "--role", "cloud", "--out", "broker", "--port", "8883", "--chain", "ca/chain.pem",
        "--cert", "tls/broker.crt", "--key", "tls/broker.key", "--crl", "ca/crl.pem", "--district", "d1",
        "--user", getpass.getuser(), "--ingest-identity", "ingest", "--ingest-identity", "ingest-2",
    )  # fmt: skip
    out = tmp_path / "broker"
    conf = (out / "mosquitto.conf").read_text()
    files = BrokerInputs(
        tmp_path / "ca" / "chain.pem", tmp_path / "tls" / "broker.crt", tmp_path / "tls" / "broker.key",
        tmp_path / "ca" / "crl.pem",
    )  # fmt: skip
    expected = broker_profile(out, files, port=8883, bind="0.0.0.0", user=getpass.getuser())
    assert conf == render_mosquitto_conf(expected)
    for line in (
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        "tls_version tlsv1.2",
        f"crlfile {tmp_path / 'ca' / 'crl.pem'}",
        "allow_anonymous false",
        f"persistence_location {out / 'data'}/",
        f"pid_file {out / 'data' / 'mosquitto.pid'}",
    ):
        assert line in conf.splitlines()
    paths = [line.split(" ", 1)[1] for line in conf.splitlines() if line.split(" ")[0].endswith("file")]
    assert paths and all(Path(p).is_absolute() for p in paths), paths
    assert (out / "data").is_dir()
    acl = (out / "acl.conf").read_text()
    assert "pattern write ce/v1/d1/%u/up/+" in acl and "pattern read ce/v1/d1/%u/down/+" in acl
    for ingest in ("ingest", "ingest-2"):
        assert f"user {ingest}\ntopic read ce/v1/d1/+/up/+\ntopic write ce/v1/d1/+/down/ack\n" in acl


@pytest.mark.parametrize("missing", ["--chain", "--cert", "--key", "--crl"])
def test_broker_config_refuses_an_input_that_does_not_exist(tmp_path: Path, missing: str) -> None:
    files = {"--chain": "chain.pem", "--cert": "broker.crt", "--key": "broker.key", "--crl": "crl.pem"}
    for option, name in files.items():
        if option != missing:
            (tmp_path / name).write_text("x")
    args = [arg for option, name in files.items() for arg in (option, str(tmp_path / name))]
    result = runner.invoke(
        app, ["broker", "config", "--role", "cloud", "--out", str(tmp_path / "b"), "--district", "d1", *args]
    )
    assert result.exit_code != 0
    assert f"{missing} {tmp_path / files[missing]} does not exist" in str(result.exception)
    assert not (tmp_path / "b").exists(), "nothing is written for a broker that cannot start"


def cityedge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line (main() prints errors), not Typer's runner."""
    return subprocess.run(
        [sys.executable, "-m", "cityedge.cli", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_error_quoting_a_pattern_reaches_the_operator_intact(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(CSV.replace("edge-node-001", "Edge_Node"))
    done = cityedge("inventory", "import", "bad.csv", "-d", f"sqlite:///{tmp_path / 'c.db'}", cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.csv:2: device_id 'Edge_Node' is outside ^[a-z0-9][a-z0-9-]{0,62}$" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_inventory_in_latin1_is_a_sentence_with_its_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "devices.csv").write_bytes(CSV.replace("NX-500", "NX-500 Straße").encode("latin-1"))
    done = cityedge(
        "inventory", "import", "devices.csv", "-d", f"sqlite:///{tmp_path / 'c.db'}", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "devices.csv:2: byte 0xdf at column 34 is not UTF-8" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_api_serve_names_a_port_that_is_taken_and_a_missing_certificate(tmp_path: Path) -> None:
    run("ca", "init", "--offline", str(tmp_path / "off"), "--ca-dir", str(tmp_path / "ca"))
    db, ca = f"sqlite:///{tmp_path / 'c.db'}", str(tmp_path / "ca")
    tls = str(tmp_path / "tls")
    run(
        "ca", "issue", "--profile", "api", "api", "--san", "127.0.0.1", "--out", tls, "-d", db, "--ca-dir", ca
    )
    (tmp_path / "tokens").write_text("secret\n")
    base = [
        "api",
        "serve",
        "-d",
        db,
        "--ca-dir",
        ca,
        "--host",
        "127.0.0.1",
        "--operator-tokens-file",
        "tokens",
    ]
    missing = cityedge(*base, "--cert", "tls/api.crt", "--key", "tls/none.key", cwd=tmp_path)
    assert missing.returncode == 2 and "api: the server key tls/none.key does not exist" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = cityedge(*base, "--port", port, "--cert", "tls/api.crt", "--key", "tls/api.key", cwd=tmp_path)
    assert busy.returncode == 2, busy.stderr
    assert f"api: cannot listen on 127.0.0.1:{port}: Address already in use (another process" in busy.stderr
    assert "Traceback" not in busy.stderr
