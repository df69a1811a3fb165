"""Pure retry timing: exponential backoff with full jitter, and a token bucket for drains.

Full jitter (delay uniform in [0, min(cap, base * 2**attempt)]) spreads a district's nodes
apart after a shared outage; the bucket keeps a backlog drain from stampeding the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityedge.transport import full_jitter_delay

__all__ = ["TokenBucket", "full_jitter_delay"]


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
