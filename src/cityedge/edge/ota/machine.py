"""The OTA updater's state machine: one pure table, no I/O, no clock.

Every step the updater takes is a row `(state, event) -> next state`; anything else raises
`TransitionError`. The updater persists the state it enters before doing that step's work,
so after a power loss `BOOT` says where a restart goes: before the switch it resumes the
attempt from a fresh check, after the switch it rolls back to the committed slot.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from cityedge.protocol.errors import TransitionError

__all__ = ["BOOT", "TABLE", "State", "boots_trial", "next_state", "table_rows"]


class State(StrEnum):
    IDLE = "idle"
    CHECKING = "checking"
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    INSTALLED = "installed"
    SWITCHED = "switched"
    SOAKING = "soaking"
    COMMITTED = "committed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"


S = State
TABLE: Final[dict[tuple[State, str], State]] = {
    (S.IDLE, "check"): S.CHECKING,
    (S.CHECKING, "up_to_date"): S.IDLE,
    (S.CHECKING, "unreachable"): S.IDLE,
    (S.CHECKING, "found"): S.DOWNLOADING,
    (S.CHECKING, "refuse"): S.REFUSED,
    (S.DOWNLOADING, "verified"): S.INSTALLING,
    (S.DOWNLOADING, "refuse"): S.REFUSED,
    (S.DOWNLOADING, "unreachable"): S.IDLE,
    (S.INSTALLING, "written"): S.INSTALLED,
    (S.INSTALLING, "refuse"): S.REFUSED,
    (S.INSTALLED, "switch"): S.SWITCHED,
    (S.SWITCHED, "started"): S.SOAKING,
    (S.SWITCHED, "crashed"): S.ROLLING_BACK,
    (S.SOAKING, "healthy"): S.COMMITTED,
    (S.SOAKING, "unhealthy"): S.ROLLING_BACK,
    (S.ROLLING_BACK, "restored"): S.ROLLED_BACK,
    (S.COMMITTED, "reported"): S.IDLE,
    (S.ROLLED_BACK, "reported"): S.IDLE,
    (S.REFUSED, "reported"): S.IDLE,
    # A restart (power loss, SIGKILL) in each state: nothing half-done is trusted.
    (S.IDLE, "boot"): S.IDLE,
    (S.CHECKING, "boot"): S.CHECKING,
    (S.DOWNLOADING, "boot"): S.CHECKING,
    (S.INSTALLING, "boot"): S.CHECKING,
    (S.INSTALLED, "boot"): S.CHECKING,
    (S.SWITCHED, "boot"): S.ROLLING_BACK,
    (S.SOAKING, "boot"): S.ROLLING_BACK,
    (S.ROLLING_BACK, "boot"): S.ROLLING_BACK,
    (S.COMMITTED, "boot"): S.COMMITTED,
    (S.ROLLED_BACK, "boot"): S.ROLLED_BACK,
    (S.REFUSED, "boot"): S.REFUSED,
}

# Where a restart goes from each state (the "boot" rows, for the docs and the tests).
BOOT: Final[dict[State, State]] = {s: nxt for (s, event), nxt in TABLE.items() if event == "boot"}


def next_state(state: State, event: str) -> State:
    try:
        return TABLE[(state, event)]
    except KeyError:
        raise TransitionError(f"ota: no transition from {state.value!r} on {event!r}") from None


def boots_trial(state: State) -> bool:
    """Whether the workload runs from the trial slot in `state` (only while it is judged)."""
    return state in (S.SWITCHED, S.SOAKING)


def table_rows() -> list[tuple[str, str, str]]:
    """(state, event, next) rows, the source of the diagram in docs/ota.md."""
    return [(s.value, e, n.value) for (s, e), n in TABLE.items()]
