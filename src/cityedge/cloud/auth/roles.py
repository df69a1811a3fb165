"""Roles and the permissions they grant: a pure table, checked on every API route.

viewer reads; operator also runs the fleet (devices, enrollment, revocation, rollout
pause/resume); release-manager publishes, promotes and drives rollouts; admin does all
of it and manages users, tokens and roles.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PERMISSIONS", "ROLES", "allowed", "check_role"]

_READ: Final = frozenset(
    {"devices.read", "ca.read", "releases.read", "rollouts.read", "audit.read", "fleet.read"}
    | {"events.read", "telemetry.read", "alerts.read"}  # fleet health, incidents, telemetry, alerts
)
_OPERATE: Final = frozenset({"devices.write", "devices.revoke", "rollouts.pause"})
_RELEASE: Final = frozenset({"releases.publish", "releases.promote", "rollouts.write", "rollouts.pause"})
_ADMIN: Final = frozenset({"users.admin"})

ROLES: Final[dict[str, frozenset[str]]] = {
    "viewer": _READ,
    "operator": _READ | _OPERATE,
    "release-manager": _READ | _RELEASE,
    "admin": _READ | _OPERATE | _RELEASE | _ADMIN,
}
PERMISSIONS: Final = frozenset().union(*ROLES.values())


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def allowed(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in ROLES.get(role, frozenset())
