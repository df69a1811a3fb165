"""The TUF repository over HTTPS: metadata and target files, exactly as written on disk.

Public by design, like the CRL: nodes fetch without a token, and trust comes from the
signatures they verify, not from this server. Only names the repository can hold are
served (`N.role.json`, `timestamp.json`, `{channel}/{sha256}.{name}`).
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import FileResponse

from cityedge.cloud.api.ota_state import OtaState, ota_of
from cityedge.protocol.release import CHANNELS

__all__ = ["router"]

router = APIRouter(prefix="/tuf", tags=["tuf"])
_METADATA: Final = re.compile(
    r"^(?:[0-9]{1,10}\.(?:root|targets|snapshot|canary|staging|stable)|timestamp)\.json$"
)
_TARGET: Final = re.compile(r"^[0-9a-f]{64}\.[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@router.get("/metadata/{name}")
def metadata(name: str, ota: OtaState = Depends(ota_of)) -> FileResponse:
    if not _METADATA.match(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such metadata")
    path = ota.repo_dir / "metadata" / name
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such metadata")
    return FileResponse(path, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/targets/{channel}/{name}")
def target(channel: str, name: str, ota: OtaState = Depends(ota_of)) -> FileResponse:
    if channel not in CHANNELS or not _TARGET.match(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such target")
    path = ota.repo_dir / "targets" / channel / name
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such target")
    return FileResponse(path, media_type="application/octet-stream")
