"""Rollout state and the TUF repository over the real HTTPS API."""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

from cityedge.cloud.releases.rollout import Policy, plan, step
from cityedge.cloud.store import make_engine
from cityedge.cloud.store.releases import RolloutStore
from tests.support.ota import make_repo
from tests.support.ota_api import serve_ota


def test_rollouts_are_shown_and_steered_through_the_api_with_permissions(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with serve_ota(tmp_path, repo.directory) as served:
        r = plan("r-1", "1.1.0", {"n1": ("canary",), "n2": ("stable",)}, Policy(canary_nodes=("n1",)))
        step(r, {}, time.time())
        store = RolloutStore(make_engine(served.database))
        store.save(r.id, r.version, r.status, msgspec.json.encode(r).decode(), datetime.now(UTC))
        tokens = {
            role: served.auth.create_user(role, role, by="admin") for role in ("viewer", "operator", "admin")
        }
        ctx = ssl.create_default_context(cafile=str(served.cafile))

        def call(role: str, method: str, path: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            return httpx.request(method, served.url + path, headers=headers, verify=ctx, timeout=30)

        shown = call("viewer", "GET", "/api/v1/rollouts/r-1").json()
        assert [w["channel"] for w in shown["waves"]] == ["canary", "stable"] and shown["status"] == "running"
        assert call("viewer", "POST", "/api/v1/rollouts/r-1/pause").status_code == 403
        assert call("operator", "POST", "/api/v1/rollouts/r-1/pause").json()["status"] == "paused"
        assert call("operator", "POST", "/api/v1/rollouts/r-1/pause").status_code == 409
        assert call("operator", "POST", "/api/v1/rollouts/r-1/resume").status_code == 403
        assert call("admin", "POST", "/api/v1/rollouts/r-1/resume").json()["status"] == "running"
        back = call("admin", "POST", "/api/v1/rollouts/r-1/waves/0/rollback").json()
        assert back["status"] == "rolled_back" and back["pending"] == [
            {"kind": "rollback", "channel": "canary", "nodes": ["n1"]}
        ]
        assert call("viewer", "GET", "/api/v1/rollouts/nope").status_code == 404
        verify = call("admin", "GET", "/api/v1/audit/verify").json()
        assert verify["ok"] is True
        actions = [e["action"] for e in call("admin", "GET", "/api/v1/audit").json()]
        assert {"rollout.pause", "rollout.resume", "rollout.rollback_wave", "rollouts.pause"} <= set(actions)
        # the TUF repository is public and serves only what the repository can hold
        tuf = httpx.Client(base_url=served.url + "/tuf", verify=ctx, timeout=30)
        assert tuf.get("/metadata/1.root.json").json()["signed"]["_type"] == "root"
        assert tuf.get("/metadata/timestamp.json").status_code == 200
        assert tuf.get("/metadata/..%2Fkeys%2Fsnapshot.pem").status_code == 404
        assert tuf.get("/metadata/1.root.json.bak").status_code == 404
        assert tuf.get("/targets/canary/" + "0" * 64 + ".x.tar").status_code == 404
        assert tuf.get("/targets/secret/" + "0" * 64 + ".x.tar").status_code == 404
        tuf.close()
        store.engine.dispose()
