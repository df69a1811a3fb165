"""scripts/_venv.sh probes for a Python quietly (pyenv shims answer for versions they lack)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_probing_pythons_a_pyenv_shim_lacks_prints_nothing(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "_venv.sh", tmp_path / "scripts")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for missing in ("python3.13", "python3.12"):  # what a pyenv shim does for a version it does not select
        (bin_dir / missing).write_text(
            f"#!/bin/sh\necho 'pyenv: {missing}: command not found' >&2\nexit 127\n"
        )
        (bin_dir / missing).chmod(0o755)
    (bin_dir / "python3.11").symlink_to(sys.executable)
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    stamp = hashlib.sha1((tmp_path / "pyproject.toml").read_bytes(), usedforsecurity=False).hexdigest()[:12]
    (venv / f".cityedge-dev-{stamp}").touch()  # installed already: only the probe runs
    done = subprocess.run(
        ["bash", "-c", "source scripts/_venv.sh dev && echo probed"], cwd=tmp_path, capture_output=True,
        text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "probed\n", "")
