"""One SLO's verdict: target, comparison, what was measured and how, and by how much it missed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["SloResult", "rounded"]


@dataclass(frozen=True)
class SloResult:
    name: str
    target: float
    comparison: str  # "<=" or ">="
    measured: float | None
    unit: str
    method: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "fail"
        ok = {"<=": self.measured <= self.target, "<": self.measured < self.target}.get(
            self.comparison, self.measured >= self.target
        )
        return "pass" if ok else "fail"

    @property
    def shortfall(self) -> str | None:
        """By how much a failed SLO missed, in its own unit."""
        if self.verdict == "pass":
            return None
        if self.measured is None:
            return "nothing was measured"
        gap = abs(self.measured - self.target)
        word = "under" if self.comparison == ">=" else "over"
        return f"{word} the target by {gap:.4g} {self.unit}".rstrip()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict, "shortfall": self.shortfall}


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
