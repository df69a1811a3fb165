"""Devices: list the inventory, import a CSV, issue a bootstrap token (operator endpoints)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from cityedge.cloud.api.deps import ApiDeps, permitted
from cityedge.cloud.api.enrollment import BootstrapToken
from cityedge.cloud.registry import EnrollmentRefused, InventoryError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


class TokenIssued(BootstrapToken):
    expires_at: str


@router.get("")
def list_devices(deps: ApiDeps = Depends(permitted("devices.read"))) -> list[dict[str, Any]]:
    return [d.as_dict() for d in deps.registry.store.devices()]


@router.post("/import")
async def import_inventory(
    request: Request, dry_run: bool = False, deps: ApiDeps = Depends(permitted("devices.write"))
) -> dict[str, Any]:
    try:
        plan = deps.registry.import_inventory(await request.body(), "upload", deps.clock(), dry_run=dry_run)
    except InventoryError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {"problems": exc.problems}) from exc
    return plan.summary() | {"dry_run": dry_run}


@router.post("/by-serial/{serial}/token")
def issue_token(serial: str, deps: ApiDeps = Depends(permitted("devices.write"))) -> TokenIssued:
    try:
        token, expires = deps.registry.issue_token(serial, deps.clock())
    except EnrollmentRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return TokenIssued(serial=serial, token=token, expires_at=expires.isoformat())
