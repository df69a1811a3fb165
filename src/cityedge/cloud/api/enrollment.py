"""Enrollment (bootstrap token + CSR over HTTPS) and renewal (CSR over mutual TLS)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel

from cityedge.cloud.api.deps import ApiDeps, client_certificate, deps_of
from cityedge.cloud.registry import EnrollmentRefused, Issued

__all__ = ["BootstrapToken", "router"]

router = APIRouter(prefix="/api/v1", tags=["enrollment"])


class BootstrapToken(BaseModel):
    """A device's one-time enrollment token: issued for its serial (`devices` router), presented
    back here with that serial."""

    serial: str
    token: str


class EnrollRequest(BootstrapToken):
    csr: str


class RenewRequest(BaseModel):
    csr: str


class CertificateIssued(BaseModel):
    """What enrollment and renewal return: the certificate, the chain to trust, its expiry."""

    device_id: str
    certificate: str
    chain: str
    not_after: str


def _response(issued: Issued) -> CertificateIssued:
    return CertificateIssued(
        device_id=issued.device_id,
        certificate=issued.certificate_pem.decode(),
        chain=issued.chain_pem.decode(),
        not_after=issued.not_after.isoformat(),
    )


@router.post("/enroll")
def enroll(body: EnrollRequest, deps: ApiDeps = Depends(deps_of)) -> CertificateIssued:
    try:
        issued = deps.registry.enroll(body.token, body.serial, body.csr.encode(), deps.clock())
    except EnrollmentRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    return _response(issued)


@router.post("/renew")
def renew(body: RenewRequest, request: Request, deps: ApiDeps = Depends(deps_of)) -> CertificateIssued:
    presented = client_certificate(request)
    if presented is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "renewal needs the device's client certificate (mTLS)"
        )
    try:
        issued = deps.registry.renew(presented, body.csr.encode(), deps.clock())
    except EnrollmentRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    return _response(issued)
