"""Channels on the release repository: the key ceremony, publish, promote, list.

The top-level targets role (offline key) delegates `canary/*`, `staging/*` and `stable/*`
each to a role with its own keys and threshold, so a device itself refuses a file under
`stable/` that the release managers did not sign. Promotion copies the identical bytes to
the next channel's path and lists the same hash there; nothing is rebuilt.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from securesystemslib.signer import Signer
from tuf.api.metadata import DelegatedRole, Delegations, TargetFile

from cityedge.cloud.releases.bundle import Bundle
from cityedge.cloud.releases.keys import ONLINE_ROLES, KeyPlan, generate, write_key
from cityedge.cloud.releases.repository import ReleaseRepository, atomic_write
from cityedge.protocol.errors import ReleaseError
from cityedge.protocol.release import (
    CHANNELS,
    Latest,
    Manifest,
    latest_path,
    parse_version,
    target_path,
)

__all__ = ["Listed", "init_repository", "listing", "promote", "publish", "threshold"]


@dataclass(frozen=True)
class Listed:
    """One release as a channel lists it: the signed target file and the manifest it carries."""

    channel: str
    target: TargetFile

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = self.target.custom["cityedge"]
        return manifest

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def path(self) -> str:
        return self.target.path

    @property
    def sha256(self) -> str:
        return self.target.hashes["sha256"]

    @property
    def length(self) -> int:
        return self.target.length

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "version": self.version, "path": self.path,
            "sha256": self.sha256, "length": self.length, "manifest": dict(self.manifest),
        }  # fmt: skip


def _inside(child: Path, parent: Path) -> bool:
    return child.resolve().is_relative_to(parent.resolve())


def init_repository(
    directory: Path, offline: Path, now: datetime, plan: KeyPlan = KeyPlan()
) -> dict[str, Any]:
    """The ceremony: make every key, write root v1 and the channel delegations.

    Root, targets and release-manager keys go to `offline` (which must not be inside the
    control plane's `directory`); online keys go to `directory/keys`.
    """
    if _inside(offline, directory) or _inside(directory, offline):
        raise ReleaseError(f"offline key dir {offline} must be outside the repository {directory}")
    if (directory / "metadata" / "1.root.json").exists():
        raise ReleaseError(f"{directory}: a release repository already exists here")
    root, targets = generate(), generate()
    online = {role: generate() for role in ONLINE_ROLES}
    managers = [generate() for _ in range(plan.stable_keys)]
    written: dict[str, Any] = {
        "root": write_key(root, offline / "root.pem"),
        "targets": write_key(targets, offline / "targets.pem"),
    }
    written["release_managers"] = [
        write_key(s, offline / f"release-manager-{i}.pem") for i, s in enumerate(managers, 1)
    ]
    for role, signer in online.items():
        write_key(signer, directory / "keys" / f"{role}.pem")
    signers: dict[str, list[Signer]] = {
        "root": [root],
        "targets": [targets],
        "stable": list[Signer](managers),
        **{r: [s] for r, s in online.items()},
    }
    repo = ReleaseRepository(directory, now, signers)
    channel_keys = {"canary": [online["canary"]], "staging": [online["staging"]], "stable": managers}
    thresholds = {"canary": 1, "staging": 1, "stable": plan.stable_threshold}
    with repo.locked():
        with repo.edit_root() as r:
            r.consistent_snapshot = True
            for role, signer in (("root", root), ("targets", targets)):
                r.add_key(signer.public_key, role)
            for role in ("snapshot", "timestamp"):
                r.add_key(online[role].public_key, role)
        with repo.edit_targets() as t:
            t.delegations = Delegations(keys={}, roles={})
            assert t.delegations.roles is not None
            for ch in CHANNELS:
                t.delegations.roles[ch] = DelegatedRole(ch, [], thresholds[ch], True, [f"{ch}/*"])
                for signer in channel_keys[ch]:
                    t.add_key(signer.public_key, ch)
        for ch in CHANNELS:
            with repo.edit_targets(ch):
                pass
        repo.do_snapshot()
        repo.do_timestamp()
    return {**written, "repository": directory, "online_keys": directory / "keys"}


def threshold(repo: ReleaseRepository, channel: str) -> int:
    delegations = repo.targets().delegations
    assert delegations is not None and delegations.roles is not None
    return delegations.roles[channel].threshold


def _releases(repo: ReleaseRepository, channel: str) -> dict[str, TargetFile]:
    found = {}
    for tf in repo.targets(channel).targets.values():
        custom = tf.custom.get("cityedge") if isinstance(tf.custom, dict) else None
        if custom is not None:
            found[str(custom["version"])] = tf
    return found


def listing(repo: ReleaseRepository) -> list[Listed]:
    out = []
    for ch in CHANNELS:
        for _, tf in sorted(_releases(repo, ch).items(), key=lambda kv: parse_version(kv[0])):
            out.append(Listed(ch, tf))
    return out


def _find(repo: ReleaseRepository, version: str) -> Listed | None:
    return next((item for item in listing(repo) if item.version == version), None)


def _stored_file(repo: ReleaseRepository, path: str, sha256: str) -> Path:
    dirname, _, basename = path.rpartition("/")
    return repo.targets_dir / dirname / f"{sha256}.{basename}"


def _check_signers(repo: ReleaseRepository, channel: str) -> None:
    need, have = threshold(repo, channel), len(repo.signers.get(channel, []))
    if have < need:
        raise ReleaseError(f"channel {channel} needs {need} signing keys, {have} given")


def _list(repo: ReleaseRepository, channel: str, manifest: Manifest, sha256: str, length: int) -> Listed:
    path = target_path(channel, manifest.version)
    body = msgspec.to_builtins(manifest)
    tf = TargetFile(length, {"sha256": sha256}, path, {"custom": {"cityedge": body}})
    latest_bytes = msgspec.json.encode(Latest(version=manifest.version, target=path))
    latest = TargetFile.from_data(latest_path(channel), latest_bytes, ["sha256"])
    current = _releases(repo, channel)
    newest = max([parse_version(v) for v in current] + [parse_version(manifest.version)])
    with repo.edit_targets(channel) as t:
        t.targets[path] = tf
        if newest == parse_version(manifest.version):
            atomic_write(_stored_file(repo, latest.path, latest.hashes["sha256"]), latest_bytes)
            t.targets[latest.path] = latest
    repo.do_snapshot()
    repo.do_timestamp()
    return Listed(channel, tf)


def publish(repo: ReleaseRepository, bundle: Bundle, channel: str) -> Listed:
    """List a bundle under `channel`; a version is immutable (one hash for life)."""
    if channel not in CHANNELS:
        raise ReleaseError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    _check_signers(repo, channel)
    version = bundle.manifest.version
    known = _find(repo, version)
    if known is not None and known.sha256 != bundle.sha256:
        raise ReleaseError(
            f"version {version} is already published as {known.sha256[:12]}; versions are immutable"
        )
    if known is not None and known.channel == channel:
        return known
    dest = _stored_file(repo, target_path(channel, version), bundle.sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle.path, dest.with_name(dest.name + ".tmp"))
    os.replace(dest.with_name(dest.name + ".tmp"), dest)
    return _list(repo, channel, bundle.manifest, bundle.sha256, bundle.length)


def promote(repo: ReleaseRepository, version: str, to: str) -> Listed:
    """Re-list the exact bytes of `version` from a lower channel under `to`."""
    if to not in CHANNELS[1:]:
        raise ReleaseError(f"promote to {to!r}: only {', '.join(CHANNELS[1:])} are promotion targets")
    _check_signers(repo, to)
    here = {item.channel: item for item in listing(repo) if item.version == version}
    if to in here:
        return here[to]
    below = [ch for ch in CHANNELS[: CHANNELS.index(to)] if ch in here]
    if not below:
        raise ReleaseError(f"version {version} is not listed on a channel below {to}")
    src = here[below[-1]]
    source_file = _stored_file(repo, src.path, src.sha256)
    dest = _stored_file(repo, target_path(to, version), src.sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        os.link(source_file, dest)  # the same inode: provably the same bytes
    manifest = msgspec.convert(src.manifest, Manifest)
    return _list(repo, to, manifest, src.sha256, src.length)
