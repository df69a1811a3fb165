"""The audit log: read it, and check its hash chain (admins and viewers with audit.read)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from cityedge.cloud.api.ota_state import OtaCall, ota_call
from cityedge.cloud.auth.audit import verify_chain
from cityedge.protocol.errors import AuditChainError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def entries(
    after: int = 0,
    limit: int = 500,
    call: OtaCall = Depends(ota_call("audit.read")),
) -> list[dict[str, Any]]:
    return [e.as_dict() for e in call.ota.auth.store.audit_entries(after, min(limit, 5000))]


@router.get("/verify")
def verify(call: OtaCall = Depends(ota_call("audit.read"))) -> dict[str, Any]:
    try:
        return {"ok": True, "entries": verify_chain(call.ota.auth.store.audit_entries())}
    except AuditChainError as exc:
        return {"ok": False, "first_bad_entry": exc.index, "error": str(exc)}
