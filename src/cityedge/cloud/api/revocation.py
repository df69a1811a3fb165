"""Revocation: revoke a device's certificates, publish the CRL, cut its live sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from cityedge.cloud.api.deps import ApiDeps, permitted
from cityedge.cloud.registry import EnrollmentRefused

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/devices", tags=["revocation"])


@router.post("/{device_id}/revoke")
def revoke(device_id: str, deps: ApiDeps = Depends(permitted("devices.revoke"))) -> dict[str, Any]:
    try:
        serials = deps.registry.revoke(device_id, deps.clock())
    except EnrollmentRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return {"device_id": device_id, "revoked_serials": serials}
