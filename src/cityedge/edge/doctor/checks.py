"""The node doctor's judgements: measured facts and `now` in, a `Finding` with a fix out. Pure.

Each fix follows the field guide's troubleshooting steps (missing heartbeat, latency or loss to
the cloud, stale data, an expired certificate or a failed TLS handshake) in this stack's terms.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cityedge.protocol.doctor import Finding, Limits, Verdict, graded, judged, warned

__all__ = [
    "BacklogFacts",
    "CertFacts",
    "CrlFacts",
    "Limits",
    "judge_backlog",
    "judge_broker",
    "judge_camera",
    "judge_certificate",
    "judge_clock",
    "judge_crl",
    "judge_disk",
    "judge_rtt",
]

RENEW = (
    "renew or re-enroll the node (`cityedge enroll` with a new token from `cityedge device token`), "
    "then restart the agent"
)


@dataclass(frozen=True)
class CertFacts:
    path: str
    not_after: datetime | None  # None: the file cannot be read
    chain_ok: bool
    chain_detail: str
    serial: int | None = None


def judge_certificate(c: CertFacts, now: datetime, lim: Limits) -> Finding:
    if c.not_after is None:
        return Finding(check="certificate", verdict="fail", detail=f"{c.path} cannot be read", fix=RENEW)
    days = (c.not_after - now).total_seconds() / 86400
    if days <= 0:
        return Finding(
            check="certificate",
            verdict="fail",
            detail=f"{c.path} expired {-days:.1f} days ago ({c.not_after:%Y-%m-%d %H:%M} UTC)",
            fix=RENEW,
        )
    if not c.chain_ok:
        return Finding(
            check="certificate",
            verdict="fail",
            detail=f"{c.path}: {c.chain_detail}",
            fix="the certificate is not from the district CA in cafile: check the chain, re-enroll",
        )
    if days < lim.cert_warn_days:
        return Finding(
            check="certificate",
            verdict="warn",
            detail=f"{c.path} expires in {days:.1f} days",
            fix="it should have renewed at two thirds of its life: check identity.api_url, then " + RENEW,
        )
    return Finding(
        check="certificate", verdict="ok", detail=f"valid for {days:.0f} more days; chain verifies"
    )


@dataclass(frozen=True)
class CrlFacts:
    source: str
    next_update: datetime | None
    this_update: datetime | None
    revokes_us: bool
    error: str = ""


# What the CRL check can find: its verdict and the fix the operator is shown.
_CRL_CASES: Final[dict[str, tuple[Verdict, str]]] = {
    "fresh": ("ok", ""),
    "missing": (
        "unknown",
        "pass --crl FILE or set identity.api_url so the doctor can fetch the district CRL",
    ),
    "unreadable": ("unknown", "check that the control plane's API is reachable"),
    "revokes us": (
        "fail",
        "the broker refuses revoked certificates: re-enroll the node if it should be trusted again",
    ),
    "stale": (
        "fail",
        "the control plane re-publishes the CRL: check that `cityedge api serve` runs, then reload the "
        "broker (SIGHUP)",
    ),
}


def judge_crl(c: CrlFacts | None, now: datetime) -> Finding:
    case, detail = _crl_case(c, now)
    verdict, fix = _CRL_CASES[case]
    return Finding(check="crl", verdict=verdict, detail=detail, fix=fix)


def _crl_case(c: CrlFacts | None, now: datetime) -> tuple[str, str]:
    """Which of `_CRL_CASES` this is, and what was seen."""
    if c is None:
        return "missing", "no CRL to check (no identity.api_url, no --crl)"
    if c.error:
        return "unreadable", f"{c.source}: {c.error}"
    if c.revokes_us:
        return "revokes us", f"{c.source} lists this node's certificate as revoked"
    if c.next_update is None or c.next_update <= now:
        when = f"{c.next_update:%Y-%m-%d %H:%M} UTC" if c.next_update else "unknown"
        return "stale", f"{c.source} is stale (nextUpdate {when}): brokers refuse every client"
    left = (c.next_update - now).total_seconds() / 3600
    return "fresh", f"fresh ({left:.0f} h to nextUpdate)"


def judge_broker(target: str, error: str | None, tls_kind: str | None, hint: str | None) -> Finding:
    if error is None:
        return Finding(check="broker", verdict="ok", detail=f"{target}: TCP and TLS handshake accepted")
    if tls_kind is not None:
        return Finding(
            check="broker",
            verdict="fail",
            detail=f"{target}: TLS refused ({tls_kind}): {error}",
            fix=hint or "check the certificate and the district CA",
        )
    return Finding(
        check="broker",
        verdict="fail",
        detail=f"{target}: unreachable: {error}",
        fix="check power and the link (lights, switch port, route/APN); is the broker running and "
        "is uplink.host/port right? The outbox keeps every record meanwhile",
    )


def judge_rtt(samples_ms: Sequence[float], lim: Limits) -> Finding:
    if not samples_ms:
        return Finding(
            check="rtt",
            verdict="unknown",
            detail="no round trip measured (broker unreachable)",
            fix="fix the broker check first",
        )
    median = statistics.median(samples_ms)
    jitter = statistics.pstdev(samples_ms)
    detail = f"median {median:.0f} ms, jitter {jitter:.0f} ms over {len(samples_ms)} handshakes"
    fix = (
        "measure with ping and mtr; use a nearer cloud region or a regional aggregation point; on cellular "
        "check the APN's QoS and that the fallback link is up; local decisions do not wait for the cloud"
    )
    verdict = graded(median, lim.rtt_warn_ms, lim.rtt_fail_ms)
    if verdict == "ok" and jitter > lim.jitter_warn_ms:
        verdict = "warn"
    return judged("rtt", verdict, detail, fix)


@dataclass(frozen=True)
class BacklogFacts:
    records: int
    bytes: int
    max_records: int
    max_bytes: int
    oldest_age_s: float
    drops: dict[str, int]
    waiting_for_store: int | None = None  # from the running agent's metrics, when it answers
    oldest_waiting_s: float | None = None
    store_ack_timeout_s: float = 30.0


def judge_backlog(b: BacklogFacts, lim: Limits) -> list[Finding]:
    fill = max(b.records / b.max_records, b.bytes / b.max_bytes)
    detail = (
        f"{b.records} records ({fill:.0%} full), oldest {b.oldest_age_s:.0f} s; "
        f"dropped {sum(b.drops.values())} ({', '.join(f'{k}: {n}' for k, n in b.drops.items()) or 'none'})"
    )
    if fill >= lim.full_ratio:
        found = Finding(
            check="outbox",
            verdict="fail",
            detail=detail,
            fix="the uplink cannot drain: fix the broker/RTT checks; then raise outbox.max_records/"
            "max_bytes if the node must ride out longer outages (drops are counted by stream)",
        )
    else:
        waits = bool(b.drops) or b.oldest_age_s > lim.backlog_warn_s
        found = warned(
            "outbox",
            waits,
            detail,
            "records wait or were dropped: check the link and ingest; a stream's when_full decides what goes",
        )
    return [found, _waiting(b)]


def _waiting(b: BacklogFacts) -> Finding:
    if b.waiting_for_store is None:
        return Finding(
            check="store-acks",
            verdict="unknown",
            detail="the agent's metrics do not answer",
            fix="set metrics_port in node.yaml (and run the agent) to see records waiting for the store",
        )
    age = b.oldest_waiting_s or 0.0
    detail = (
        f"{b.waiting_for_store} records the broker has wait for the store's acknowledgement (oldest "
        f"{age:.0f} s)"
    )
    return warned(
        "store-acks",
        age > b.store_ack_timeout_s,
        detail,
        "ingest is not acknowledging: is `cityedge cloud ingest` running, and does the broker's "
        "district match this node's? The records go again; none is lost",
    )


def judge_disk(path: str, free: int, total: int, floor: int, retention: tuple[int, int] | None) -> Finding:
    gib, mib = 2**30, 2**20
    detail = (
        f"{path}: {free / gib:.1f} GiB free of {total / gib:.1f} GiB (outbox floor {floor / mib:.0f} MiB)"
    )
    if retention is not None:
        detail += f"; raw video {retention[0] / 2**30:.1f} GiB of its {retention[1] / 2**30:.1f} GiB cap"
    if free < floor:
        return Finding(
            check="disk",
            verdict="fail",
            detail=detail,
            fix=(
                "the outbox refuses every record under its floor: free space, shorten retention or lower "
                "outbox.min_free_disk_bytes"
            ),
        )
    low = free < 2 * floor or free < total * 0.1 or (retention is not None and retention[0] > retention[1])
    return warned("disk", low, detail, "free space or shorten retention before the floor is reached")


def judge_clock(skew_s: float | None, source: str, lim: Limits) -> Finding:
    if skew_s is None:
        return Finding(
            check="clock",
            verdict="unknown",
            detail="no reference time (no identity.api_url, no --time-url)",
            fix="pass --time-url https://<control-plane>/ or check chrony/NTP with `timedatectl`",
        )
    side = "ahead of" if skew_s > 0 else "behind"
    detail = f"this node's clock is {abs(skew_s):.1f} s {side} {source}"
    fix = (
        "sync the clock (chrony/NTP: `timedatectl set-ntp true`, `chronyc tracking`): records carry the "
        "node's "
        "time, and certificates and the CRL are judged by it"
    )
    return judged("clock", graded(abs(skew_s), lim.skew_warn_s, lim.skew_fail_s), detail, fix)


def judge_camera(camera: str, url: str, error: str | None) -> Finding:
    if error is None:
        return Finding(check=f"camera:{camera}", verdict="ok", detail=f"{url}: a frame decoded")
    return Finding(
        check=f"camera:{camera}",
        verdict="fail",
        detail=f"{url}: {error}",
        fix="check the camera's power and PoE, its address and credentials in the URL, and that "
        "its stream is enabled; the agent reconnects by itself once it answers",
    )
