"""Pure retry timing: exponential backoff with full jitter, and a token bucket for drains.

Full jitter (delay uniform in [0, min(cap, base * 2**attempt)]) spreads a district's nodes
apart after a shared outage; the bucket keeps a backlog drain from stampeding the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenBucket", "full_jitter_delay"]


def full_jitter_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """Delay before retry number `attempt` (0-based): uniform in [0, min(cap, base * 2**attempt)]
    for `rand` uniform in [0, 1)."""
    ceiling = min(cap, base * float(2 ** min(attempt, 62)))
    return float(ceiling * rand)


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. Time is passed in."""

    rate: float
    burst: float
    tokens: float = 0.0
    updated: float | None = None

    def take(self, amount: float, now: float) -> float:
        """Take `amount` tokens; return how long to wait first (0 when available now)."""
        if self.updated is None:
            self.updated, self.tokens = now, self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
