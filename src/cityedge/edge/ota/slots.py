"""The node's two slots and its OTA state file: what runs, what is on trial, what is committed.

    {ota_dir}/state.json        the updater's state (temp file + fsync + os.replace)
    {ota_dir}/slots/a, slots/b  extracted bundles; only the inactive one is ever written
    {ota_dir}/current           symlink to the slot that boots (for a systemd unit)

The state file is the single truth: a restart reads it and boots the committed slot unless
a trial is being judged. A slot is written to `slots/x.partial` and renamed into place.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import Literal

import msgspec

from cityedge.edge.ota.machine import State, boots_trial
from cityedge.protocol.errors import ReleaseError, UpdateRefused
from cityedge.protocol.release import MANIFEST_NAME, Manifest, decode_manifest

__all__ = ["NodeState", "SlotName", "SlotStore"]

SlotName = Literal["a", "b"]


class NodeState(msgspec.Struct, kw_only=True):
    state: State = State.IDLE
    committed_slot: SlotName = "a"
    committed_version: str = "0.0.0"
    previous_version: str = ""
    floor: str = "0.0.0"
    channel: str = "stable"
    failed: list[str] = []  # releases that failed here: the schedule does not retry them
    # the attempt in progress
    target_channel: str = ""
    target_version: str = ""
    rollback: bool = False
    download: str = ""
    trial_slot: SlotName | None = None
    trial_started_at: float | None = None
    outcome_reason: str = ""
    outcome_detail: str = ""
    outcome_step: str = ""

    def boot_slot(self) -> SlotName:
        if boots_trial(self.state) and self.trial_slot is not None:
            return self.trial_slot
        return self.committed_slot

    def inactive(self) -> SlotName:
        return "b" if self.committed_slot == "a" else "a"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SlotStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_file = directory / "state.json"
        (directory / "slots").mkdir(parents=True, exist_ok=True)

    def slot_dir(self, slot: SlotName) -> Path:
        return self.directory / "slots" / slot

    def load(self, default: NodeState) -> NodeState:
        if not self.state_file.exists():
            return default
        try:
            return msgspec.json.decode(self.state_file.read_bytes(), type=NodeState)
        except msgspec.DecodeError as exc:
            raise ReleaseError(f"{self.state_file}: unreadable OTA state: {exc}") from None

    def save(self, state: NodeState) -> None:
        tmp = self.directory / ".state.json.tmp"
        with open(tmp, "wb") as f:
            f.write(msgspec.json.encode(state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)
        self._point_current(state.boot_slot())
        _fsync_dir(self.directory)

    def _point_current(self, slot: SlotName) -> None:
        link, tmp = self.directory / "current", self.directory / ".current.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(Path("slots") / slot)
        os.replace(tmp, link)

    def install(self, slot: SlotName, bundle: Path, expected: Manifest) -> Manifest:
        """Extract `bundle` into `slot`; its manifest must equal the one TUF listed."""
        final, partial = self.slot_dir(slot), self.slot_dir(slot).with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            with tarfile.open(bundle, "r:") as tar:
                manifest = self._extract(tar, partial)
        except tarfile.TarError as exc:
            raise UpdateRefused("bundle", f"not a tar bundle: {exc}") from None
        if manifest != expected:
            raise UpdateRefused("manifest", "the bundle's manifest differs from the signed listing")
        _fsync_dir(partial)
        os.replace(partial, final)
        _fsync_dir(final.parent)
        return manifest

    @staticmethod
    def _extract(tar: tarfile.TarFile, dest: Path) -> Manifest:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        raw = tar.extractfile(members[MANIFEST_NAME]) if MANIFEST_NAME in members else None
        if raw is None:
            raise UpdateRefused("bundle", f"no {MANIFEST_NAME} in the bundle")
        try:
            manifest = decode_manifest(raw.read(), MANIFEST_NAME)
        except ReleaseError as exc:
            raise UpdateRefused("manifest", str(exc)) from None
        if set(members) - {MANIFEST_NAME} != set(manifest.files):
            raise UpdateRefused("bundle", "bundle members differ from the manifest's file list")
        for name, digest in manifest.files.items():
            target = (dest / name).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise UpdateRefused("bundle", f"member {name!r} escapes the slot")
            src = tar.extractfile(members[name])
            data = src.read() if src is not None else b""
            if hashlib.sha256(data).hexdigest() != digest:
                raise UpdateRefused("bundle", f"{name} does not match its manifest hash")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(io.BytesIO(data), out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(target, members[name].mode & 0o755)
        (dest / MANIFEST_NAME).write_bytes(msgspec.json.encode(manifest))
        return manifest

    def manifest(self, slot: SlotName) -> Manifest | None:
        path = self.slot_dir(slot) / MANIFEST_NAME
        return decode_manifest(path.read_bytes(), str(path)) if path.exists() else None

    def verify(self, slot: SlotName) -> Manifest:
        """Re-hash a slot's files against its manifest (a slot is never trusted half-written)."""
        manifest = self.manifest(slot)
        if manifest is None:
            raise ReleaseError(f"slot {slot} holds no release")
        for name, digest in manifest.files.items():
            if hashlib.sha256((self.slot_dir(slot) / name).read_bytes()).hexdigest() != digest:
                raise ReleaseError(f"slot {slot}: {name} does not match its manifest")
        return manifest
