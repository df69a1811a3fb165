"""What `cityedge doctor` reports: one finding per troubleshooting step, with a verdict and a fix.

The node's checks (`edge/doctor/`) and the cloud's (`cloud/fleet/doctor.py`) both speak this,
and judge the link and the clock by the same `Limits`, so the CLI and the API agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import msgspec

__all__ = ["VERDICTS", "Finding", "Limits", "Verdict", "graded", "judged", "warned", "worst"]

Verdict = Literal["ok", "warn", "fail", "unknown"]
VERDICTS: Final = ("ok", "unknown", "warn", "fail")  # from best to worst


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    check: str  # e.g. "certificate", "crl", "broker", "rtt", "outbox", "disk", "clock", "camera:cam-1"
    verdict: Verdict
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Limits:
    cert_warn_days: float = 14.0
    rtt_warn_ms: float = 250.0
    rtt_fail_ms: float = 1000.0
    jitter_warn_ms: float = 50.0
    skew_warn_s: float = 2.0
    skew_fail_s: float = 30.0
    backlog_warn_s: float = 600.0
    full_ratio: float = 0.9


def judged(check: str, verdict: Verdict, detail: str, fix: str) -> Finding:
    """The finding of a step whose fix is the same whatever went wrong; an ok step shows none."""
    return Finding(check=check, verdict=verdict, detail=detail, fix="" if verdict == "ok" else fix)


def warned(check: str, warn: bool, detail: str, fix: str) -> Finding:
    """A step that can only pass or warn; the fix shows with the warning."""
    return judged(check, "warn" if warn else "ok", detail, fix)


def graded(value: float, warn_above: float, fail_above: float) -> Verdict:
    return "fail" if value > fail_above else "warn" if value > warn_above else "ok"


def worst(findings: list[Finding]) -> Verdict:
    if not findings:
        return "unknown"
    return max((f.verdict for f in findings), key=VERDICTS.index)
