"""RBAC and the audit trail: roles and permissions, hashed tokens, a hash-chained log.

`roles.py` and `audit.py` are pure (the store and offline verifiers import them);
`service.py` (`AuthService`) and `http.py` (`require(permission)`) are imported directly.
"""

from cityedge.cloud.auth.audit import AuditEntry, verify_chain
from cityedge.cloud.auth.roles import PERMISSIONS, ROLES, allowed

__all__ = ["PERMISSIONS", "ROLES", "AuditEntry", "allowed", "verify_chain"]
