"""RBAC over the real HTTPS API, on SQLite and PostgreSQL: who may publish and promote, the
audit entry every attempt leaves, and an audit chain that names the first edited row."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from cityedge.cloud.store import make_engine
from cityedge.cloud.store.auth import audit_log
from tests.support.ota import bundle, make_repo
from tests.support.ota_api import Served, serve_ota


def _client(served: Served, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=30,
        verify=ssl.create_default_context(cafile=str(served.cafile)),
    )  # fmt: skip


def _verify(database: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cityedge.cli", "audit", "verify", "--database", database],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_cannot_publish_or_promote_and_the_attempt_is_audited(
    tmp_path: Path, store_url: str, role: str
) -> None:
    repo = make_repo(tmp_path)
    data = bundle(tmp_path, "1.1.0").path.read_bytes()
    with serve_ota(tmp_path, repo.directory, store_url) as served:
        token = served.auth.create_user(f"{role}-1", role, by="admin")
        manager = served.auth.create_user("rm-1", "release-manager", by="admin")
        with _client(served, token) as c:
            assert c.get("/api/v1/releases").status_code == 200  # reading is allowed
            refused = c.post("/api/v1/releases", params={"channel": "canary"}, content=data)
            assert refused.status_code == 403, refused.text
            assert c.post("/api/v1/releases/1.1.0/promote", params={"to": "staging"}).status_code == 403
        with _client(served, manager) as c:
            assert c.post("/api/v1/releases", params={"channel": "canary"}, content=data).status_code == 200
            promoted = c.post("/api/v1/releases/1.1.0/promote", params={"to": "staging"})
            assert promoted.status_code == 200, promoted.text
            assert promoted.json()["sha256"] == c.get("/api/v1/releases").json()[0]["sha256"]
        with _client(served, "not-a-token") as c:
            assert c.post("/api/v1/releases", content=data).status_code == 401
        entries = served.auth.store.audit_entries()
    denied = [(e.actor, e.action, e.outcome) for e in entries if e.outcome == "denied"]
    assert denied == [
        (f"{role}-1", "releases.publish", "denied"),
        (f"{role}-1", "releases.promote", "denied"),
    ]
    done = [
        (e.actor, e.action, e.target)
        for e in entries
        if e.outcome == "ok" and e.action.startswith("release.")
    ]
    assert done == [("rm-1", "release.publish", "1.1.0"), ("rm-1", "release.promote", "1.1.0")]
    assert _verify(store_url).returncode == 0


def test_editing_any_audit_row_makes_verify_fail_at_that_row(tmp_path: Path, store_url: str) -> None:
    from cityedge.cloud.auth.commands import open_auth

    auth = open_auth(store_url)
    for i in range(5):
        auth.audit("admin", "user.role", f"user-{i}", "ok", {"role": "viewer"})
    ok = _verify(store_url)
    assert ok.returncode == 0 and "5 entries" in ok.stdout
    engine = make_engine(store_url)
    for seq in (1, 3, 5):
        original = next(e for e in auth.store.audit_entries() if e.seq == seq)
        with engine.begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(target="someone-else"))
        broken = _verify(store_url)
        assert broken.returncode == 1
        assert f"BROKEN at entry {seq}" in broken.stdout, broken.stdout
        with engine.begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(target=original.target))
    engine.dispose()
    auth.store.engine.dispose()
    assert _verify(store_url).returncode == 0
