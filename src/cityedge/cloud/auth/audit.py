"""The audit log's hash chain: pure, so it can be checked offline, anywhere.

Each entry's hash is SHA-256 over the canonical JSON of its fields and the previous entry's
hash; the first entry chains from 64 zeros. Editing, inserting or deleting an entry in the
middle breaks every hash after it, and `verify_chain` names the first entry that is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from cityedge.protocol.errors import AuditChainError

__all__ = ["GENESIS", "AuditEntry", "entry_hash", "verify_chain"]

GENESIS: Final = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str  # RFC 3339 UTC, stored as text so every backend returns the same bytes
    actor: str
    action: str
    target: str
    outcome: str  # "ok" or "denied"
    detail: str  # canonical JSON
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "detail": json.loads(self.detail)}


def canonical(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(seq: int, at: str, actor: str, action: str, target: str, outcome: str, detail: str,
               prev_hash: str) -> str:  # fmt: skip
    fields = [seq, at, actor, action, target, outcome, detail, prev_hash]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def verify_chain(entries: Iterable[AuditEntry]) -> int:
    """Check every link; returns how many entries verified or raises at the first bad one."""
    prev, expected_seq, n = GENESIS, 1, 0
    for e in entries:
        if e.seq != expected_seq:
            raise AuditChainError(
                e.seq, f"sequence jumps from {expected_seq - 1} to {e.seq} (entry removed?)"
            )
        if e.prev_hash != prev:
            raise AuditChainError(e.seq, "does not link to the entry before it")
        want = entry_hash(e.seq, e.at, e.actor, e.action, e.target, e.outcome, e.detail, e.prev_hash)
        if want != e.hash:
            raise AuditChainError(e.seq, "content does not match its hash (edited)")
        prev, expected_seq, n = e.hash, expected_seq + 1, n + 1
    return n
