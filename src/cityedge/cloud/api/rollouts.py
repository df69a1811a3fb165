"""Rollouts: their waves and health as the policy sees them; pause, resume, roll back a wave."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, status

from cityedge.cloud.api.ota_state import OtaCall, OtaState, ota_call
from cityedge.cloud.releases import rollout as policy
from cityedge.protocol.errors import TransitionError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"])


def _store(ota: OtaState) -> Any:
    if ota.rollouts is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no rollout store configured")
    return ota.rollouts


def _load(ota: OtaState, rollout_id: str) -> policy.Rollout:
    raw = _store(ota).load(rollout_id)
    if raw is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rollout {rollout_id}")
    return msgspec.json.decode(raw, type=policy.Rollout)


@router.get("")
def list_rollouts(call: OtaCall = Depends(ota_call("rollouts.read"))) -> list[Any]:
    return [msgspec.json.decode(raw) for raw in _store(call.ota).all()]


@router.get("/{rollout_id}")
def get_rollout(rollout_id: str, call: OtaCall = Depends(ota_call("rollouts.read"))) -> Any:
    return msgspec.to_builtins(_load(call.ota, rollout_id))


def _change(call: OtaCall, rollout_id: str, action: str, fn: Callable[[policy.Rollout], Any]) -> Any:
    r = _load(call.ota, rollout_id)
    try:
        fn(r)
    except TransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    _store(call.ota).save(r.id, r.version, r.status, msgspec.json.encode(r).decode(), call.ota.clock())
    call.audit(action, f"rollout {r.id} {r.version}", "ok", {"status": r.status})
    return msgspec.to_builtins(r)


@router.post("/{rollout_id}/pause")
def pause(rollout_id: str, call: OtaCall = Depends(ota_call("rollouts.pause"))) -> Any:
    return _change(call, rollout_id, "rollout.pause", policy.pause)


@router.post("/{rollout_id}/resume")
def resume(rollout_id: str, call: OtaCall = Depends(ota_call("rollouts.write"))) -> Any:
    return _change(call, rollout_id, "rollout.resume", policy.resume)


@router.post("/{rollout_id}/waves/{index}/rollback")
def roll_back(rollout_id: str, index: int, call: OtaCall = Depends(ota_call("rollouts.write"))) -> Any:
    return _change(call, rollout_id, "rollout.rollback_wave", lambda r: policy.roll_back_wave(r, index))
