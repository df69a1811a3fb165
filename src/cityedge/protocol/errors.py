"""The one rooted exception tree of cityedge.

    CityEdgeError
    +-- ProtocolError            a message or record that breaks the wire contract
    |   +-- DecodeError          bytes that are not a valid batch/envelope
    |   +-- TopicError           a topic outside the tree, or a bad segment
    |   +-- OversizeError        a payload over the configured limit
    |   +-- NodeMismatchError    a record whose node differs from the topic's node
    +-- ConfigError              a config, spec or CSV that is invalid (names file/line/field)
    |   +-- SpecError            a use-case spec that is invalid (carries its line and field)
    +-- OutboxError              the node's durable queue refused or failed an operation
    +-- StoreError               the cloud store failed an operation
    +-- PkiError                 certificate, key, CSR or CRL problem
    +-- TransitionError          a state machine was asked for a transition not in its table

Foreign exceptions (msgspec, sqlite3, paho, cryptography) are translated at the boundary
into these, with a message that says what was wrong and where.
"""

from __future__ import annotations

__all__ = [
    "CityEdgeError",
    "ConfigError",
    "DecodeError",
    "NodeMismatchError",
    "OutboxError",
    "OversizeError",
    "PkiError",
    "ProtocolError",
    "SpecError",
    "StoreError",
    "TopicError",
    "TransitionError",
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


class ConfigError(CityEdgeError):
    """Invalid configuration, spec or input file; the message names where."""


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


class TransitionError(CityEdgeError):
    """A state machine was asked for a transition that is not in its table."""
