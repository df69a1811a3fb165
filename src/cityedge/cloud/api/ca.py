"""CA status (certificates by expiry, revoked ones, CRL freshness) and the CRL itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from cityedge.cloud.api.deps import ApiDeps, deps_of, permitted

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/ca", tags=["ca"])


@router.get("/status")
def ca_status(deps: ApiDeps = Depends(permitted("ca.read"))) -> dict[str, Any]:
    return deps.registry.ca_status(deps.clock())


@router.get("/crl")
def crl(deps: ApiDeps = Depends(deps_of)) -> Response:
    # Public by design: brokers on other hosts fetch it to stay current.
    return Response(deps.registry.layout.crl.read_bytes(), media_type="application/pkix-crl")
