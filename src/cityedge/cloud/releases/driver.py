"""Drives a rollout: runs the pure policy, lists releases on channels, notifies nodes.

Seams: `notify(node, OtaNotice)` (MQTT `down/ota` in production, a direct call in tests)
and `reports()` (the newest install report per node: from the store's `ota` records in
production). `publish_and_roll_out` is the one-call API the district pilot uses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from securesystemslib.signer import Signer

from cityedge.cloud.releases import rollout as policy
from cityedge.cloud.releases.bundle import inspect
from cityedge.cloud.releases.channels import listing, promote, publish
from cityedge.cloud.releases.repository import ReleaseRepository
from cityedge.cloud.store.releases import RolloutStore
from cityedge.protocol.errors import ReleaseError
from cityedge.protocol.release import OtaNotice

__all__ = ["Report", "RolloutDriver", "latest_reports", "publish_and_roll_out"]

Report = tuple[str, str, str]  # version, outcome, reason
Notify = Callable[[str, OtaNotice], None]
Audit = Callable[[str, str, dict[str, Any]], None]  # action, target, detail


def latest_reports(records: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Report]:
    """The newest report per node from (node, body) pairs in arrival order."""
    out: dict[str, Report] = {}
    for node, body in records:
        out[node] = (str(body.get("version", "")), str(body.get("outcome", "")), str(body.get("reason", "")))
    return out


@dataclass
class RolloutDriver:
    repo_dir: Path
    rollout: policy.Rollout
    notify: Notify
    stable_signers: Sequence[Signer] = ()
    store: RolloutStore | None = None
    audit: Audit | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    def tick(self, reports: Mapping[str, Report], now: float) -> str:
        if self.store is not None and (raw := self.store.load(self.rollout.id)) is not None:
            self.rollout = msgspec.json.decode(raw, type=policy.Rollout)  # the API may have paused it
        before = (self.rollout.status, self.rollout.current)
        for action in policy.step(self.rollout, reports, now):
            self._execute(action)
        if (self.rollout.status, self.rollout.current) != before:
            self._record("rollout.step", {"status": self.rollout.status, "wave": self.rollout.current,
                                          "reason": self.rollout.reason})  # fmt: skip
        self.save(now)
        return self.rollout.status

    def _execute(self, action: policy.Action) -> None:
        if action.kind == "list":
            self._list(action.channel)
        for node in action.nodes:
            if action.kind == "rollback":
                self.notify(node, OtaNotice(action="rollback"))
            else:
                self.notify(node, OtaNotice(channel=action.channel, version=self.rollout.version))  # type: ignore[arg-type]
        self.log.append({"action": action.kind, "channel": action.channel, "nodes": list(action.nodes)})

    def _list(self, channel: str) -> None:
        repo = ReleaseRepository.online(self.repo_dir, datetime.now(UTC))
        if channel == "stable":
            repo.signers["stable"] = list(self.stable_signers)
        with repo.locked():
            if any(x.version == self.rollout.version and x.channel == channel for x in listing(repo)):
                return
            if channel == "canary":
                raise ReleaseError(f"release {self.rollout.version} is not published on canary")
            promote(repo, self.rollout.version, channel)
        self._record("release.promote", {"to": channel})

    def _record(self, action: str, detail: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit(action, f"rollout {self.rollout.id} {self.rollout.version}", detail)

    def save(self, now: float) -> None:
        if self.store is not None:
            r = self.rollout
            at = datetime.fromtimestamp(now, UTC)
            self.store.save(r.id, r.version, r.status, msgspec.json.encode(r).decode(), at)

    def summary(self) -> dict[str, Any]:
        return msgspec.to_builtins(self.rollout)  # type: ignore[no-any-return]


def publish_and_roll_out(
    repo_dir: Path,
    bundle: Path,
    fleet: Mapping[str, Sequence[str]],
    notify: Notify,
    reports: Callable[[], Mapping[str, Report]],
    *,
    stable_signers: Sequence[Signer],
    rollout_policy: policy.Policy = policy.Policy(),
    timeout_s: float = 600.0,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    audit: Audit | None = None,
) -> dict[str, Any]:
    """Publish `bundle` on canary and roll it out across `fleet` (node -> accepted channels)
    until it is done, halted, or `timeout_s` passes. Returns the rollout: its status,
    reason and waves, each with its nodes, their outcomes and reasons, and its times."""
    found = inspect(bundle)
    repo = ReleaseRepository.online(repo_dir, datetime.now(UTC))
    with repo.locked():
        publish(repo, found, "canary")
    if audit is not None:
        audit("release.publish", found.manifest.version, {"channel": "canary", "sha256": found.sha256})
    plan = policy.plan(str(uuid.uuid4()), found.manifest.version, fleet, rollout_policy)
    driver = RolloutDriver(repo_dir, plan, notify, stable_signers, audit=audit)
    deadline = clock() + timeout_s
    while driver.tick(reports(), clock()) == "running":
        if clock() > deadline:
            plan.status, plan.reason = "halted", f"timed out after {timeout_s:g} s"
            break
        sleep(poll_s)
    return driver.summary()
