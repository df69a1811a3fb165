"""What `cityedge doctor` reports: one finding per troubleshooting step, with a verdict and a fix.

The node's checks (`edge/doctor/`) and the cloud's (`cloud/fleet/doctor.py`) both speak this,
so the CLI and the API print them the same way.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = ["VERDICTS", "Finding", "Verdict", "worst"]

Verdict = Literal["ok", "warn", "fail", "unknown"]
VERDICTS: Final = ("ok", "unknown", "warn", "fail")  # from best to worst


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    check: str  # e.g. "certificate", "crl", "broker", "rtt", "outbox", "disk", "clock", "camera:cam-1"
    verdict: Verdict
    detail: str
    fix: str = ""


def worst(findings: list[Finding]) -> Verdict:
    if not findings:
        return "unknown"
    return max((f.verdict for f in findings), key=VERDICTS.index)
