"""`cityedge pilot` refuses a malformed spec before anything starts, naming the file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """\
Title: Corridor
Latency-SLO: 150ms local
Throughput: 40 fps
Retention: 24h raw, metadata -> cloud
AcceptanceTest: Controlled run 48h, 10 incidents, <5% FP
"""


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (GOOD + "Budget: 2 EUR\n", "spec.txt:6: Budget: unknown field"),
        (GOOD.replace("150ms", "150 parsecs"), "spec.txt:2: Latency-SLO: unknown unit 'parsecs'"),
        (GOOD.replace("<5% FP", "<100% FP"), "spec.txt:5: acceptance: the FP limit"),
    ],
)
def test_a_malformed_spec_fails_before_anything_starts(tmp_path: Path, spec: str, says: str) -> None:
    (tmp_path / "spec.txt").write_text(spec)
    work = tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "cityedge.cli", "pilot", "--spec", str(tmp_path / "spec.txt"),
         "--workdir", str(work), "--report", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in " ".join((proc.stdout + proc.stderr).split())
    assert not work.exists() and not (tmp_path / "report").exists()  # nothing started, nothing written


def test_an_unknown_network_profile_on_the_command_line_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cityedge.cli", "pilot", "--network", "satellite",
         "--report", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "unknown profile" in proc.stdout + proc.stderr


ROLLOUT = GOOD + "nodes: 3\ncameras_per_node: 1\nrun: 90s\nrollout:\n  at: 10s\n"


def _refused(tmp_path: Path, spec: str, *args: str) -> str:
    (tmp_path / "spec.txt").write_text(spec)
    work = tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "cityedge.cli", "pilot", "--spec", str(tmp_path / "spec.txt"),
         "--workdir", str(work), "--report", str(tmp_path / "report"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not work.exists() and not (tmp_path / "report").exists()  # nothing started, nothing written
    return " ".join((proc.stdout + proc.stderr).split())


def test_a_rollout_that_cannot_run_is_refused_before_anything_starts(tmp_path: Path) -> None:
    from cityedge.cloud.releases.bundle import build

    assert "spec.txt:11: rollout.canary: the canary cohort needs at least one node" in _refused(
        tmp_path, ROLLOUT + "  canary: 0\n"
    )
    assert "rollout.bundle" in _refused(tmp_path, ROLLOUT + "  bundle: r.tar\n  expect: done\n")
    assert "no such file" in _refused(tmp_path, ROLLOUT + "  bundle: r.tar\n  expect: done\n")
    src = tmp_path / "src"
    src.mkdir()
    manifest = (
        '{"version": "2.0.0", "agent_version": "2.0.0", "hardware": ["nx-500"], "min_version": "1.0.0", '
    )
    (src / "manifest.json").write_text(manifest + '"entrypoint": ["{python}", "run.py"]}')
    (src / "run.py").write_text("print('hi')\n")
    build(src, tmp_path / "other.tar")
    says = _refused(tmp_path, ROLLOUT + "  bundle: other.tar\n  expect: done\n")
    assert "built for ['nx-500'], the pilot's nodes are pilot-sim" in says
    assert "--nodes 1: the spec's rollout needs 2 canary and staging nodes" in _refused(
        tmp_path, ROLLOUT, "--nodes", "1"
    )
