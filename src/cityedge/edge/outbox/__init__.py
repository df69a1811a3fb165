"""The node's durable outbox: one bounded store-and-forward queue between producers and the uplink.

`Outbox.open(path)` gives the thread-safe queue on SQLite, `Outbox.in_memory()` its twin.
The policy is the pure core (`machine`, `policy`); the disk is `store`; `OutboxPort` is
what the uplink depends on; `GroupCommitter` gathers single appends into one transaction.
"""

from cityedge.edge.outbox.driver import Outbox
from cityedge.edge.outbox.group import GroupCommitter
from cityedge.edge.outbox.policy import (
    DEFAULT_POLICIES,
    DROP_REASONS,
    DropReason,
    FairScheduler,
    OutboxLimits,
    ResendPolicy,
    StreamPolicy,
    policy_for,
)
from cityedge.edge.outbox.port import AppendResult, Claim, Claimed, OutboxPort, OutboxStats, StreamStats
from cityedge.edge.outbox.storage import QuarantineEntry
from cityedge.edge.outbox.store import DiskFullError

__all__ = [
    "DEFAULT_POLICIES",
    "DROP_REASONS",
    "AppendResult",
    "Claim",
    "Claimed",
    "DiskFullError",
    "DropReason",
    "FairScheduler",
    "GroupCommitter",
    "Outbox",
    "OutboxLimits",
    "OutboxPort",
    "OutboxStats",
    "QuarantineEntry",
    "ResendPolicy",
    "StreamPolicy",
    "StreamStats",
    "policy_for",
]
