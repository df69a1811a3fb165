"""The OTA updater: drives the state table with real work at each step.

check (python-tuf) -> download (verified length and hash) -> install into the inactive slot
-> switch (the state file names the trial slot) -> restart the workload -> soak under the
health gates -> commit, or roll back to the committed slot -> report through the sink.
Each state is persisted before its work starts; `boot()` after a crash follows the table's
"boot" rows, so the node always runs its committed slot unless a trial is being judged.
"""

from __future__ import annotations

import logging
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from cityedge.edge.ota.client import Offer, ReleaseClient, Unreachable
from cityedge.edge.ota.health import HealthGates, Sample, judge
from cityedge.edge.ota.machine import State, next_state
from cityedge.edge.ota.slots import NodeState, SlotName, SlotStore
from cityedge.edge.records import RecordSink
from cityedge.protocol.errors import ReleaseError, UpdateRefused
from cityedge.protocol.release import (
    MANIFEST_NAME,
    InstallReport,
    OtaNotice,
    check_installable,
    decode_manifest,
    parse_version,
)

__all__ = ["OtaUpdater", "UpdaterSettings", "provision"]

log = logging.getLogger(__name__)
Step = tuple[str, dict[str, Any]]


class Workload(Protocol):
    slot: Path | None

    def start(self, slot: Path, manifest: Any) -> None: ...
    def alive(self) -> tuple[bool, int | None]: ...
    def stop(self) -> None: ...


class Probe(Protocol):
    def sample(self) -> Sample: ...


@dataclass(frozen=True)
class UpdaterSettings:
    hardware: str
    accept_channels: tuple[str, ...]
    gates: HealthGates = field(default_factory=HealthGates)
    poll_s: float = 1.0


def provision(slots: SlotStore, bundle: Path, channel: str) -> NodeState:
    """Factory install: put a release into slot `a` and commit it (no TUF: it is the install)."""
    with tarfile.open(bundle, "r:") as tar:
        raw = tar.extractfile(MANIFEST_NAME)
        if raw is None:
            raise ReleaseError(f"{bundle}: no {MANIFEST_NAME}")
        manifest = decode_manifest(raw.read(), f"{bundle}:{MANIFEST_NAME}")
    slots.install("a", bundle, manifest)
    state = NodeState(
        committed_slot="a", committed_version=manifest.version, floor=manifest.min_version, channel=channel
    )
    slots.save(state)
    return state


class OtaUpdater:
    def __init__(
        self,
        settings: UpdaterSettings,
        client: ReleaseClient,
        slots: SlotStore,
        workload: Workload,
        probe: Probe,
        sink: RecordSink,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_persist: Callable[[str, State], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.slots = slots
        self.workload = workload
        self.probe = probe
        self.sink = sink
        self.clock = clock
        self.sleep = sleep
        self.on_persist = on_persist
        self.state = slots.load(NodeState(channel=settings.accept_channels[-1]))
        self._offer: Offer | None = None
        self._lock = threading.RLock()

    # -- driving -------------------------------------------------------------------------

    def boot(self) -> NodeState:
        """After any start: follow the table's boot row, run the boot slot, finish the attempt."""
        with self._lock:
            was = self.state.state
            changes: dict[str, Any] = {}
            if next_state(was, "boot") is State.ROLLING_BACK and not self.state.outcome_reason:
                detail = f"the node restarted while {self.state.target_version} was on trial"
                changes = {"outcome_reason": "interrupted", "outcome_step": was.value}
                changes["outcome_detail"] = detail
            self._transition("boot", changes)
            self._ensure_running(self.state.boot_slot())
            return self.finish()

    def check(self, notice: OtaNotice | None = None) -> NodeState:
        """One update attempt to its end (blocking: includes the soak)."""
        with self._lock:
            self.finish()
            attempt: dict[str, Any] = {"target_channel": "", "target_version": "", "rollback": False}
            if notice is not None and notice.action == "rollback":
                attempt.update(target_version=self.state.previous_version, rollback=True)
            elif notice is not None:
                attempt.update(target_channel=notice.channel or "", target_version=notice.version or "")
            self._transition("check", attempt)
            return self.finish()

    def finish(self) -> NodeState:
        while self.state.state is not State.IDLE:
            event, changes = _HANDLERS[self.state.state](self)
            self._transition(event, changes)
        return self.state

    def _transition(self, event: str, changes: dict[str, Any]) -> None:
        new = next_state(self.state.state, event)
        self.state = msgspec.structs.replace(self.state, state=new, **changes)
        self.slots.save(self.state)
        log.info("ota: %s -> %s %s", event, new.value, changes or "")
        if self.on_persist is not None:
            self.on_persist(event, new)

    def _ensure_running(self, slot: SlotName) -> None:
        path = self.slots.slot_dir(slot)
        alive, _ = self.workload.alive()
        if alive and self.workload.slot == path:
            return
        manifest = self.slots.verify(slot)
        self.workload.start(path, manifest)

    # -- the steps -----------------------------------------------------------------------

    def _checking(self) -> Step:
        st = self.state
        channel = st.target_channel or st.channel
        if channel not in self.settings.accept_channels:
            return _refuse("channel", f"this node does not accept channel {channel}", State.CHECKING)
        try:
            offer = self.client.offer(channel, st.target_version or None)
        except Unreachable as exc:
            log.warning("ota: %s", exc)
            return "unreachable", {}
        except UpdateRefused as exc:
            return _refuse(exc.reason, exc.detail, State.CHECKING)
        if offer is None or (offer.version == st.committed_version and not st.rollback):
            return "up_to_date", {"channel": channel}
        if not st.target_version and parse_version(offer.version) <= parse_version(st.committed_version):
            return "up_to_date", {"channel": channel}  # a channel behind this node: nothing to do
        if not st.target_version and offer.version in st.failed:
            return "up_to_date", {"channel": channel}  # failed here before; only a notice retries it
        try:
            check_installable(offer.manifest, hardware=self.settings.hardware,
                              current=st.committed_version, floor=st.floor, rollback=st.rollback)  # fmt: skip
        except UpdateRefused as exc:
            return _refuse(exc.reason, exc.detail, State.CHECKING, version=offer.version)
        self._offer = offer
        return "found", {"target_channel": channel, "target_version": offer.version}

    def _downloading(self) -> Step:
        assert self._offer is not None
        try:
            path = self.client.download(self._offer)
        except Unreachable as exc:
            log.warning("ota: %s", exc)
            return "unreachable", {}
        except UpdateRefused as exc:
            return _refuse(exc.reason, exc.detail, State.DOWNLOADING)
        return "verified", {"download": str(path)}

    def _installing(self) -> Step:
        assert self._offer is not None
        slot = self.state.inactive()
        try:
            self.slots.install(slot, Path(self.state.download), self._offer.manifest)
        except UpdateRefused as exc:
            return _refuse(exc.reason, exc.detail, State.INSTALLING)
        return "written", {"trial_slot": slot}

    def _installed(self) -> Step:
        return "switch", {}

    def _switched(self) -> Step:
        assert self.state.trial_slot is not None
        self._ensure_running(self.state.trial_slot)
        started = self.clock()
        self.sleep(min(0.5, self.settings.poll_s))
        alive, code = self.workload.alive()
        if not alive:
            return "crashed", {"outcome_reason": "crash", "outcome_step": "switched",
                               "outcome_detail": f"workload exited with code {code} at start"}  # fmt: skip
        return "started", {"trial_started_at": started}

    def _soaking(self) -> Step:
        started = self.state.trial_started_at or self.clock()
        samples: list[Sample] = []
        while True:
            samples.append(self.probe.sample())
            verdict = judge(self.settings.gates, started, samples, self.clock())
            if verdict.result == "fail":
                return "unhealthy", {"outcome_reason": verdict.reason, "outcome_detail": verdict.detail,
                                     "outcome_step": "soaking"}  # fmt: skip
            if verdict.result == "pass":
                return "healthy", self._commit()
            self.sleep(self.settings.poll_s)

    def _commit(self) -> dict[str, Any]:
        st = self.state
        assert st.trial_slot is not None
        manifest = self.slots.verify(st.trial_slot)
        floor = max(st.floor, manifest.min_version, key=parse_version)
        return {
            "committed_slot": st.trial_slot, "committed_version": manifest.version, "floor": floor,
            "previous_version": st.committed_version, "channel": st.target_channel or st.channel,
        }  # fmt: skip

    def _rolling_back(self) -> Step:
        self._ensure_running(self.state.committed_slot)
        return "restored", {}

    def _report(self, outcome: str) -> Step:
        st = self.state
        report = InstallReport(
            version=st.target_version or st.committed_version, outcome=outcome,  # type: ignore[arg-type]
            reason=st.outcome_reason, detail=st.outcome_detail, step=st.outcome_step,
            from_version=st.previous_version if outcome == "committed" else st.committed_version,
            channel=st.target_channel or st.channel,
        )  # fmt: skip
        at = datetime.fromtimestamp(self.clock(), UTC)
        self.sink.emit("ota", f"ota.{outcome}", msgspec.to_builtins(report), at)
        self._offer = None
        failed = st.failed
        if outcome != "committed" and report.version not in failed:
            failed = [*failed[-19:], report.version]
        return "reported", {
            "failed": failed, "target_channel": "", "target_version": "", "rollback": False, "download": "",
            "trial_slot": None, "trial_started_at": None, "outcome_reason": "", "outcome_detail": "",
            "outcome_step": "",
        }  # fmt: skip


def _refuse(reason: str, detail: str, step: State, **extra: Any) -> Step:
    changes = {"outcome_reason": reason, "outcome_detail": detail, "outcome_step": step.value}
    if "version" in extra:
        changes["target_version"] = extra["version"]
    return "refuse", changes


_HANDLERS: dict[State, Callable[[OtaUpdater], Step]] = {
    State.CHECKING: OtaUpdater._checking,
    State.DOWNLOADING: OtaUpdater._downloading,
    State.INSTALLING: OtaUpdater._installing,
    State.INSTALLED: OtaUpdater._installed,
    State.SWITCHED: OtaUpdater._switched,
    State.SOAKING: OtaUpdater._soaking,
    State.ROLLING_BACK: OtaUpdater._rolling_back,
    State.COMMITTED: lambda u: u._report("committed"),
    State.ROLLED_BACK: lambda u: u._report("rolled_back"),
    State.REFUSED: lambda u: u._report("refused"),
}
