"""When a device renews its certificate, as a pure decision on (validity window, now, a random draw).

Renew at two thirds of the certificate's life, spread by jitter so a fleet enrolled on the
same day does not renew in the same minute; alarm when fewer than 14 days remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cityedge.protocol.errors import ConfigError

__all__ = ["RenewalDecision", "RenewalPolicy"]


@dataclass(frozen=True)
class RenewalDecision:
    renew_now: bool
    next_check: datetime  # when the driver should look again
    days_left: float
    alarm: bool
    expired: bool


@dataclass(frozen=True)
class RenewalPolicy:
    at_fraction: float = 2 / 3
    jitter_fraction: float = 0.05  # +/- this share of the whole life around `at_fraction`
    alarm_days: float = 14.0
    retry_fraction: float = 0.02  # after a failed attempt, retry after this share of the life
    max_retry: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        low, high = self.at_fraction - self.jitter_fraction, self.at_fraction + self.jitter_fraction
        if low <= 0 or high >= 1:
            raise ConfigError("renewal at_fraction +/- jitter_fraction must stay inside (0, 1)")

    def renew_at(self, not_before: datetime, not_after: datetime, draw: float) -> datetime:
        """The renewal instant for this certificate; `draw` in [0, 1) picks the jitter."""
        life = not_after - not_before
        return not_before + life * (self.at_fraction + (2 * draw - 1) * self.jitter_fraction)

    def decide(
        self,
        not_before: datetime,
        not_after: datetime,
        now: datetime,
        draw: float,
        last_failure: datetime | None = None,
    ) -> RenewalDecision:
        left = (not_after - now).total_seconds() / 86400
        due = self.renew_at(not_before, not_after, draw)
        retry = min((not_after - not_before) * self.retry_fraction, self.max_retry)
        if now < due:
            nxt, renew = due, False
        elif last_failure is not None and now < last_failure + retry:
            nxt, renew = last_failure + retry, False
        else:
            nxt, renew = now + retry, True
        return RenewalDecision(renew, min(nxt, not_after), left, left < self.alarm_days, now >= not_after)
