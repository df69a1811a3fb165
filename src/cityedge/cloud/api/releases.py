"""Releases: list them, publish a bundle on a channel, promote a version (audited)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from cityedge.cloud.api.ota_state import OtaCall, ota_call
from cityedge.cloud.releases.bundle import inspect
from cityedge.cloud.releases.channels import listing, promote, publish
from cityedge.cloud.releases.repository import ReleaseRepository
from cityedge.protocol.errors import ReleaseError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/releases", tags=["releases"])
MAX_BUNDLE_BYTES = 2 * 1024**3


def _refuse_offline_channel(channel: str) -> None:
    # The API holds only the online keys; stable is signed by the release managers' offline keys.
    if channel == "stable":
        raise HTTPException(
            status.HTTP_409_CONFLICT, "stable needs release-manager keys: use `cityedge release promote`"
        )


@router.get("")
def list_releases(call: OtaCall = Depends(ota_call("releases.read"))) -> list[dict[str, Any]]:
    return [item.as_dict() for item in listing(ReleaseRepository(call.ota.repo_dir, datetime.now(UTC)))]


@router.post("")
async def publish_bundle(
    request: Request,
    channel: str = "canary",
    call: OtaCall = Depends(ota_call("releases.publish")),
) -> dict[str, Any]:
    _refuse_offline_channel(channel)
    body = await request.body()
    if len(body) > MAX_BUNDLE_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "bundle too large")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.tar"
        path.write_bytes(body)
        try:
            bundle = inspect(path)
            repo = ReleaseRepository.online(call.ota.repo_dir, call.ota.clock())
            with repo.locked():
                listed = publish(repo, bundle, channel)
        except ReleaseError as exc:
            call.audit("release.publish", channel, "failed", {"error": str(exc)})
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    call.audit("release.publish", listed.version, "ok", {"channel": channel, "sha256": listed.sha256})
    return listed.as_dict()


@router.post("/{version}/promote")
def promote_release(
    version: str,
    to: str,
    call: OtaCall = Depends(ota_call("releases.promote")),
) -> dict[str, Any]:
    _refuse_offline_channel(to)
    try:
        repo = ReleaseRepository.online(call.ota.repo_dir, call.ota.clock())
        with repo.locked():
            listed = promote(repo, version, to)
    except ReleaseError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    call.audit("release.promote", version, "ok", {"to": to, "sha256": listed.sha256})
    return listed.as_dict()
