"""The identity routes check permissions too: viewers read, operators change, all audited."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from tests.support.ota import make_repo
from tests.support.ota_api import serve_ota

CSV = "device_id,serial,model,ip,mac,sim\nedge-node-001,SN1,NX-500,10.0.10.21,aa:bb:cc:dd:ee:01,SIM-1\n"


def test_viewers_read_devices_but_only_operators_import_and_revoke(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with serve_ota(tmp_path, repo.directory) as served:
        tokens = {
            r: served.auth.create_user(r, r, by="admin") for r in ("viewer", "operator", "release-manager")
        }
        ctx = ssl.create_default_context(cafile=str(served.cafile))

        def call(role: str, method: str, path: str, body: str | None = None) -> int:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            r = httpx.request(
                method, served.url + path, headers=headers, content=body, verify=ctx, timeout=30
            )
            return r.status_code

        assert call("viewer", "GET", "/api/v1/devices") == 200
        assert call("viewer", "POST", "/api/v1/devices/import", CSV) == 403
        assert call("release-manager", "POST", "/api/v1/devices/import", CSV) == 403
        assert call("operator", "POST", "/api/v1/devices/import", CSV) == 200
        assert call("viewer", "POST", "/api/v1/devices/edge-node-001/revoke") == 403
        assert httpx.get(served.url + "/api/v1/devices", verify=ctx).status_code == 401
        entries = [(e.actor, e.action, e.outcome) for e in served.auth.store.audit_entries()]
    assert ("viewer", "devices.write", "denied") in entries
    assert ("release-manager", "devices.write", "denied") in entries
    assert ("operator", "devices.write", "allowed") in entries
    assert ("viewer", "devices.revoke", "denied") in entries
    assert not any(action == "devices.read" for _, action, _ in entries)  # reads are not changes
