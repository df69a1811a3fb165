"""`cityedge doctor` on a node: the field guide's troubleshooting steps as checks, each with a
verdict and a fix. `checks.py` judges (pure), `probes.py` measures; `run_node_doctor` runs
them in the guide's order: certificate and chain, CRL, broker and TLS handshake, round trip
and jitter, outbox backlog, drops and records waiting for the store, disk and retention,
clock skew, camera streams."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cityedge.edge.config import EdgeConfig
from cityedge.edge.doctor import checks, probes
from cityedge.protocol.doctor import Finding

__all__ = ["run_node_doctor"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def run_node_doctor(
    config: EdgeConfig,
    *,
    crl: str | None = None,
    time_url: str | None = None,
    clock: Callable[[], datetime] = _utcnow,
    limits: checks.Limits = checks.Limits(),
    camera_timeout_s: float = 5.0,
) -> list[Finding]:
    """Every check, in order. `crl` and `time_url` default to the control plane's API
    (identity.api_url) when the node has one; `clock` is this node's clock."""
    tls = config.uplink_tls()
    cafile = Path(tls.cafile) if tls is not None else None
    api = config.identity.api_url.rstrip("/") if config.identity is not None else None
    out: list[Finding] = []
    serial = None
    if tls is not None:
        facts = probes.cert_facts(tls)
        serial = facts.serial
        out.append(checks.judge_certificate(facts, clock(), limits))
    crl_source = crl or (f"{api}/api/v1/ca/crl" if api else None)
    crl_facts = probes.crl_facts(crl_source, serial, cafile) if crl_source else None
    out.append(checks.judge_crl(crl_facts, clock()))
    up = config.uplink
    error, kind, hint, rtts = probes.broker_probe(up.host, up.port, tls)
    out.append(checks.judge_broker(f"{up.host}:{up.port}", error, kind, hint))
    out.append(checks.judge_rtt(rtts, limits))
    out += _outbox(config, limits)
    out.append(_disk(config))
    reference = time_url or (f"{api}/api/v1/ca/crl" if api else None)
    skew, source = probes.reference_skew(reference, cafile, clock()) if reference else (None, "")
    out.append(checks.judge_clock(skew, source, limits))
    for camera in config.cameras:
        name, url = str(camera.get("id", "?")), str(camera.get("url", ""))
        out.append(checks.judge_camera(name, url, probes.camera_error(url, camera_timeout_s)))
    return out


def _outbox(config: EdgeConfig, limits: checks.Limits) -> list[Finding]:
    facts = probes.outbox_facts(config)
    if facts is None:
        return [
            Finding(
                check="outbox",
                verdict="unknown",
                detail=f"no outbox at {config.data_dir}/outbox.db",
                fix="has the agent run on this node (data_dir)?",
            )
        ]
    waiting = probes.agent_waiting(config.metrics_port)
    if waiting is not None:
        from dataclasses import replace

        facts = replace(facts, waiting_for_store=waiting[0], oldest_waiting_s=waiting[1])
    return checks.judge_backlog(facts, limits)


def _disk(config: EdgeConfig) -> Finding:
    free, total = probes.disk(config.data_dir)
    retention = probes.retention_usage(config.retention)
    return checks.judge_disk(str(config.data_dir), free, total, config.outbox.min_free_disk_bytes, retention)
