"""One-time bootstrap tokens: random, stored only as a SHA-256 hash, bound to a serial, expiring.

Pure apart from the random draw: checking a presented token against its stored row is a
decision over (row, serial, now) that names the reason for a refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from cityedge.cloud.store.registry import TokenRow

__all__ = ["DEFAULT_TOKEN_TTL", "hash_token", "new_token", "token_refusal"]

DEFAULT_TOKEN_TTL = timedelta(hours=1)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_refusal(row: TokenRow | None, serial: str, now: datetime) -> str | None:
    """None when the token may be used by `serial` now, else why not."""
    if row is None:
        return "unknown enrollment token"
    if row.used_at is not None:
        return "enrollment token already used"
    if now >= row.expires_at:
        return "enrollment token expired"
    if not hmac.compare_digest(row.serial, serial):
        return "enrollment token is bound to another serial"
    return None
