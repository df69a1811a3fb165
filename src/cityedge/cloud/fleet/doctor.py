"""`cityedge doctor --node ID` from the cloud: the same troubleshooting steps as on the node,
judged from what the control plane knows (its status, its latest heartbeat, the CA's view).
Pure: the stored row, the CA status and `now` in, findings out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from cityedge.cloud.fleet.config import AlertThresholds
from cityedge.protocol.doctor import Finding, Limits, graded, judged, warned
from cityedge.protocol.errors import CityEdgeError
from cityedge.protocol.health import Heartbeat, decode_heartbeat

__all__ = ["cloud_doctor"]

ON_NODE = "run `cityedge doctor --config node.yaml` on the node for the link, disk and camera steps"
# The link and clock steps judge by the node doctor's own limits, so both doctors agree.
NODE_LIMITS = Limits()
# The steps whose fix is the same whatever went wrong (see `judged`), by check.
FIXES: Final = {
    "status": (
        "check the node's power and PoE, link lights and switch port, a DHCP or gateway change; "
        "then the agent's log (`journalctl -u cityedge-agent -n 200`) and " + ON_NODE
    ),
    "rtt": "measure with ping and mtr from the node; nearer region, APN QoS, fallback link",
    "outbox": "the node cannot drain: check its link and ingest; drops are counted by stream and reason",
    "disk": "free space or shorten retention on the node",
    "camera": "check the camera's stream and the node's CPU; " + ON_NODE,
}


def cloud_doctor(
    node: str, row: Any | None, ca_status: dict[str, Any], now: datetime, t: AlertThresholds
) -> list[Finding]:
    if row is None:
        return [
            Finding(
                check="status",
                verdict="fail",
                detail=f"{node} has never sent a heartbeat",
                fix="is it enrolled and is its agent running? Check its uplink host, port and district",
            )
        ]
    beat = _beat(row.heartbeat)
    out = [_status(row, now), *_identity(node, beat, ca_status, now, t), _crl(ca_status)]
    if beat is None:
        return [
            *out,
            Finding(check="heartbeat", verdict="unknown", detail="no readable heartbeat body", fix=ON_NODE),
        ]
    out += [_link(beat), _backlog(beat, t), _disk(beat, t), _clock(row), *_cameras(beat, t)]
    return out


def _beat(body: dict[str, Any] | None) -> Heartbeat | None:
    try:
        return decode_heartbeat(body) if body is not None else None
    except CityEdgeError:
        return None


def _status(row: Any, now: datetime) -> Finding:
    seen = f"last heartbeat {(now - row.last_seen).total_seconds():.0f} s ago" if row.last_seen else "never"
    detail = f"{row.status} since {row.since:%Y-%m-%d %H:%M:%S} UTC ({row.reason}); {seen}"
    return judged(
        "status",
        "ok" if row.status == "online" else "fail" if row.status == "offline" else "warn",
        detail,
        FIXES["status"],
    )


def _identity(
    node: str, beat: Heartbeat | None, ca: dict[str, Any], now: datetime, t: AlertThresholds
) -> list[Finding]:
    revoked = [c for c in ca.get("revoked", []) if c["device_id"] == node]
    live = [c for c in ca.get("certificates", []) if c["device_id"] == node]
    days = beat.cert_days_left if beat is not None and beat.cert_days_left is not None else None
    if days is None and live:
        days = max(c["days_left"] for c in live)
    if not live and revoked:
        return [
            Finding(
                check="certificate",
                verdict="fail",
                detail=f"{node}'s certificates are revoked",
                fix="re-enroll the node (`cityedge device token`, then `cityedge enroll` on it)",
            )
        ]
    if days is None:
        return [
            Finding(check="certificate", verdict="unknown", detail="no certificate on record", fix=ON_NODE)
        ]
    if days <= 0:
        return [
            Finding(
                check="certificate",
                verdict="fail",
                detail=f"expired {-days:.1f} days ago",
                fix=(
                    "reissue: `cityedge device token` and `cityedge enroll` on the node, then restart "
                    "its agent"
                ),
            )
        ]
    if days < t.cert_days:
        return [
            Finding(
                check="certificate",
                verdict="warn",
                detail=f"expires in {days:.1f} days",
                fix="it should renew at two thirds of its life: check its identity.api_url and the API",
            )
        ]
    return [Finding(check="certificate", verdict="ok", detail=f"{days:.0f} days left")]


def _crl(ca: dict[str, Any]) -> Finding:
    crl = ca.get("crl", {})
    if crl.get("alert"):
        return Finding(
            check="crl",
            verdict="fail",
            detail=f"the CRL is stale (nextUpdate {crl.get('next_update')})",
            fix="`cityedge api serve` re-publishes it; check it runs, then reload the brokers (SIGHUP)",
        )
    return Finding(
        check="crl",
        verdict="ok",
        detail=f"{crl.get('freshness', 'fresh')}, nextUpdate {crl.get('next_update')}",
    )


def _link(beat: Heartbeat) -> Finding:
    link = beat.link
    if link.rtt_ms is None:
        return Finding(
            check="rtt", verdict="unknown", detail="the heartbeat measured no round trip", fix=ON_NODE
        )
    p95, jitter = link.rtt_p95_ms or 0.0, link.jitter_ms or 0.0
    detail = (
        f"median {link.rtt_ms:.0f} ms, p95 {p95:.0f} ms, jitter {jitter:.0f} ms, {link.reconnects} reconnects"
    )
    slow = link.rtt_ms > NODE_LIMITS.rtt_warn_ms or (link.jitter_ms or 0) > NODE_LIMITS.jitter_warn_ms
    return warned("rtt", slow, detail, FIXES["rtt"])


def _backlog(beat: Heartbeat, t: AlertThresholds) -> Finding:
    waiting = sum(s.sent for s in beat.outbox.values())
    detail = (
        f"oldest record {beat.oldest_backlog_s:.0f} s, {sum(s.pending for s in beat.outbox.values())} "
        "waiting, "
        f"{waiting} waiting for the store, {beat.dropped} dropped"
    )
    waits = bool(beat.dropped) or beat.oldest_backlog_s > t.backlog_s
    return warned("outbox", waits, detail, FIXES["outbox"])


def _disk(beat: Heartbeat, t: AlertThresholds) -> Finding:
    ratio = beat.disk_free_ratio
    if ratio is None:
        return Finding(
            check="disk", verdict="unknown", detail="the heartbeat carries no disk figures", fix=ON_NODE
        )
    detail = f"{ratio:.0%} free ({(beat.disk_free_bytes or 0) / 2**30:.1f} GiB)"
    low = ratio < t.disk_free_ratio
    return warned("disk", low, detail, FIXES["disk"])


def _clock(row: Any) -> Finding:
    if row.heartbeat_ts is None or row.last_seen is None:
        return Finding(check="clock", verdict="unknown", detail="no heartbeat timing", fix=ON_NODE)
    ahead = (row.heartbeat_ts - row.last_seen).total_seconds()
    verdict = graded(ahead, NODE_LIMITS.skew_warn_s, NODE_LIMITS.skew_fail_s)
    if verdict != "ok":
        return Finding(
            check="clock",
            verdict=verdict,
            detail=(
                f"the node's clock is at least {ahead:.1f} s ahead (its heartbeat is dated after it arrived)"
            ),
            fix="sync the node's clock (chrony/NTP: `timedatectl set-ntp true`)",
        )
    return Finding(check="clock", verdict="ok", detail=f"heartbeat dated {-ahead:.1f} s before it was stored")


def _cameras(beat: Heartbeat, t: AlertThresholds) -> list[Finding]:
    out = []
    for name, cam in sorted(beat.cameras.items()):
        detail = f"{cam.fps:.1f} fps (target {cam.fps_target}), p95 {cam.p95_ms} ms, source {cam.source}"
        slow = cam.fps_target is not None and cam.fps < t.fps_ratio * cam.fps_target
        late = cam.p95_ms is not None and cam.p95_ms > t.latency_slo_ms
        out.append(warned(f"camera:{name}", slow or late, detail, FIXES["camera"]))
    return out
