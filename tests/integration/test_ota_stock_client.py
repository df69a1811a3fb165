"""Independent check: python-tuf's own ngclient (no cityedge code), given only the
repository's URL and its 1.root.json, downloads and verifies a published release over the
control plane's real HTTPS."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from cityedge.cloud.releases.channels import publish
from tests.support.ota import bundle, make_repo
from tests.support.ota_api import serve_ota

STOCK_CLIENT = """
import sys, tempfile
from tuf.ngclient import Updater
url, root, path = sys.argv[1:4]
with tempfile.TemporaryDirectory() as d:
    u = Updater(d + "/md", url + "/tuf/metadata/", d + "/t", url + "/tuf/targets/",
                bootstrap=open(root, "rb").read())
    info = u.get_targetinfo(path)
    assert info is not None, "target not found"
    print(open(u.download_target(info), "rb").read().hex())
"""


def test_the_stock_tuf_client_verifies_a_published_release(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    b = bundle(tmp_path, "1.1.0")
    online = repo.online()
    with online.locked():
        publish(online, b, "canary")
    (tmp_path / "client").mkdir()
    root = tmp_path / "client" / "1.root.json"
    root.write_bytes(repo.root.read_bytes())
    with serve_ota(tmp_path, repo.directory) as served:
        env = {
            **os.environ,
            "SSL_CERT_FILE": str(served.cafile),
        }  # the district CA, like a node's trust store
        out = subprocess.run(
            [sys.executable, "-c", STOCK_CLIENT, served.url, str(root), "canary/cityedge-1.1.0.tar"],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path / "client", check=False,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = bytes.fromhex(out.stdout.strip())
    assert hashlib.sha256(data).hexdigest() == b.sha256
    assert data == b.path.read_bytes()
