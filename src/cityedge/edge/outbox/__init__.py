"""The node's durable outbox: one bounded store-and-forward queue between producers and the uplink.

`Outbox.open(path)` gives the thread-safe queue; the policy (priorities, limits, drops) is
the pure `machine` module and the disk is the SQLite `store` module.
"""

from cityedge.edge.outbox.driver import AppendResult, Claimed, Outbox, OutboxStats, StreamStats
from cityedge.edge.outbox.machine import (
    DEFAULT_POLICIES,
    DROP_REASONS,
    FairScheduler,
    OutboxLimits,
    StreamPolicy,
    policy_for,
)
from cityedge.edge.outbox.store import DiskFullError

__all__ = [
    "DEFAULT_POLICIES",
    "DROP_REASONS",
    "AppendResult",
    "Claimed",
    "DiskFullError",
    "FairScheduler",
    "Outbox",
    "OutboxLimits",
    "OutboxStats",
    "StreamPolicy",
    "StreamStats",
    "policy_for",
]
