"""The audit log: read it, and check its hash chain (admins and viewers with audit.read)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from cityedge.cloud.api.ota_state import OtaState, ota_of
from cityedge.cloud.auth.audit import verify_chain
from cityedge.cloud.auth.http import require
from cityedge.cloud.auth.service import Principal
from cityedge.protocol.errors import AuditChainError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def entries(
    after: int = 0,
    limit: int = 500,
    _: Principal = Depends(require("audit.read")),
    ota: OtaState = Depends(ota_of),
) -> list[dict[str, Any]]:
    return [e.as_dict() for e in ota.auth.store.audit_entries(after, min(limit, 5000))]


@router.get("/verify")
def verify(_: Principal = Depends(require("audit.read")), ota: OtaState = Depends(ota_of)) -> dict[str, Any]:
    try:
        return {"ok": True, "entries": verify_chain(ota.auth.store.audit_entries())}
    except AuditChainError as exc:
        return {"ok": False, "first_bad_entry": exc.index, "error": str(exc)}
