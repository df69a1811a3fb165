"""The one rooted exception tree of cityedge.

    CityEdgeError
    +-- ProtocolError            a message or record that breaks the wire contract
    |   +-- DecodeError          bytes that are not a valid batch/envelope
    |   +-- TopicError           a topic outside the tree, or a bad segment
    |   +-- OversizeError        a payload over the configured limit
    |   +-- NodeMismatchError    a record whose node differs from the topic's node
    |   +-- ContractError        a record that breaks the record contract (size, depth, ts,
    |                            strings, numbers); `reason` says which
    +-- ConfigError              a config, spec or CSV that is invalid (names file/line/field)
    |   +-- InventoryError       an inventory CSV with problems; one line-numbered message each
    |   +-- SpecError            a use-case spec that is invalid (carries its line and field)
    +-- OutboxError              the node's durable queue refused or failed an operation
    |   +-- DiskFullError        (edge.outbox.store) the disk filled under a write
    +-- RetentionError           (edge.retention) the raw-video segment index failed an operation
    +-- StoreError               the cloud store failed an operation
    |   +-- StoreUnavailableError  (cloud.store.records) the database cannot be reached: retry
    |   +-- StoreRejectedError     (cloud.store.records) the database refused the write: quarantine
    +-- PkiError                 certificate, key, CSR or CRL problem
    |   +-- EnrollmentRefused    an enrollment, renewal or revocation the registry will not serve
    +-- TransitionError          a state machine was asked for a transition not in its table
    +-- ReleaseError             a release bundle, manifest or repository operation is invalid
    |   +-- UpdateRefused        the node refuses an update (signature, version, hardware...)
    |   +-- Unreachable          (edge.ota.client) the release repository cannot be reached
    +-- AuthError                an API caller lacks the permission (RBAC) for an action
    +-- AuditChainError          the audit log's hash chain is broken (names the first bad entry)

Subclasses marked with a module live next to the code that raises them; nothing else
subclasses CityEdgeError (tests/protocol checks that the tree above is the whole tree).
Foreign exceptions (msgspec, sqlite3, paho, cryptography) are translated at the boundary
into these, with a message that says what was wrong and where.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuditChainError",
    "AuthError",
    "CityEdgeError",
    "ConfigError",
    "ContractError",
    "DecodeError",
    "EnrollmentRefused",
    "InventoryError",
    "NodeMismatchError",
    "OutboxError",
    "OversizeError",
    "PkiError",
    "ProtocolError",
    "ReleaseError",
    "SpecError",
    "StoreError",
    "TopicError",
    "TransitionError",
    "UpdateRefused",
]


class CityEdgeError(Exception):
    """Root of every error cityedge raises on purpose."""


class ProtocolError(CityEdgeError):
    """A message breaks the wire contract."""

    reason: str = "protocol"


class DecodeError(ProtocolError):
    """Bytes that do not decode to a valid batch or envelope."""

    reason = "decode"


class TopicError(ProtocolError):
    """A topic that is not part of the cityedge topic tree."""

    reason = "topic"


class OversizeError(ProtocolError):
    """A payload larger than the configured limit."""

    reason = "oversize"


class NodeMismatchError(ProtocolError):
    """A record claims a node or stream other than the topic it arrived on."""

    reason = "node_mismatch"


class ContractError(ProtocolError):
    """A record that breaks the record contract (`protocol/contract.py`); never worth a retry."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ConfigError(CityEdgeError):
    """Invalid configuration, spec or input file; the message names where."""


class InventoryError(ConfigError):
    """An inventory file with problems; `problems` holds one line-numbered message each."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"{source}: {len(self.problems)} problem(s), nothing imported:\n  " + "\n  ".join(self.problems)
        )


class SpecError(ConfigError):
    """A use-case spec that is invalid: `line` (1-based, 0 when unknown) and `field` say where."""

    def __init__(self, source: str, line: int, field: str, problem: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field}: {problem}")
        self.source, self.line, self.field, self.problem = source, line, field, problem


class OutboxError(CityEdgeError):
    """The node's durable outbox failed an operation."""


class StoreError(CityEdgeError):
    """The cloud record store failed an operation."""


class PkiError(CityEdgeError):
    """A certificate, key, CSR or CRL problem."""


class EnrollmentRefused(PkiError):
    """An enrollment, renewal or revocation the registry will not serve; the message says why."""


class TransitionError(CityEdgeError):
    """A state machine was asked for a transition that is not in its table."""


class ReleaseError(CityEdgeError):
    """A release bundle, manifest or repository operation is invalid; the message says where."""


class UpdateRefused(ReleaseError):
    """The node refuses an update; `reason` is a short machine-readable cause for the report."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class AuthError(CityEdgeError):
    """A caller lacks the permission for an action (or presented no valid token)."""


class AuditChainError(CityEdgeError):
    """The audit log's hash chain does not verify; `index` is the first broken entry."""

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(f"audit entry {index}: {detail}")
        self.index = index
