"""The release repository on disk, built on python-tuf's Metadata API and `tuf.repository`.

Layout under the repository directory (served as-is by the control plane, see
`cloud/api/tuf_repo.py`):

    metadata/N.root.json, N.targets.json, N.canary.json ... N.snapshot.json, timestamp.json
    targets/{channel}/{sha256}.{name}      consistent snapshots: files named by their hash
    keys/{snapshot,timestamp,canary,staging}.pem   the online keys (never root or targets)

Every version of every role is kept, so a client in the middle of an update still finds
the consistent set it started with. Writes go through a temp file and `os.replace`, under
an exclusive lock, so two publishers never interleave and a crash leaves no partial file.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from securesystemslib.signer import Signer
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Targets, Timestamp
from tuf.repository import Repository

from cityedge.cloud.releases.keys import ONLINE_ROLES, load_signer
from cityedge.protocol.errors import ReleaseError
from cityedge.protocol.release import CHANNELS

__all__ = ["EXPIRY", "RESIGN_BEFORE", "ReleaseRepository", "atomic_write"]

EXPIRY: Final[Mapping[str, timedelta]] = {
    "root": timedelta(days=365),
    "targets": timedelta(days=365),
    "stable": timedelta(days=180),
    "staging": timedelta(days=30),
    "canary": timedelta(days=30),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}
# Online roles are re-signed when they get this close to expiring.
RESIGN_BEFORE: Final[Mapping[str, timedelta]] = {
    "timestamp": timedelta(hours=8),
    "snapshot": timedelta(days=2),
    "canary": timedelta(days=7),
    "staging": timedelta(days=7),
}
_VERSIONED = re.compile(r"^(\d+)\.(.+)\.json$")


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ReleaseRepository(Repository):
    """One TUF repository. `signers` names who signs each role in this session; `now` is the
    time every new version's expiry counts from (passed in, so tests can age metadata)."""

    def __init__(self, directory: Path, now: datetime, signers: Mapping[str, list[Signer]] | None = None):
        self.directory = directory
        self.metadata_dir = directory / "metadata"
        self.targets_dir = directory / "targets"
        self.keys_dir = directory / "keys"
        self.now = now
        self.signers: dict[str, list[Signer]] = {k: list(v) for k, v in (signers or {}).items()}

    @classmethod
    def online(cls, directory: Path, now: datetime) -> ReleaseRepository:
        """The repository with its online keys loaded (what the control plane runs with)."""
        repo = cls(directory, now)
        if not (repo.metadata_dir / "1.root.json").is_file():
            raise ReleaseError(f"{directory}: no release repository here (run `cityedge release keys`)")
        for role in ONLINE_ROLES:
            repo.signers[role] = [load_signer(repo.keys_dir / f"{role}.pem")]
        return repo

    @contextmanager
    def locked(self) -> Iterator[ReleaseRepository]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- storage -------------------------------------------------------------------------

    def latest_version(self, role: str) -> int:
        if role == Timestamp.type:
            path = self.metadata_dir / "timestamp.json"
            return Metadata.from_bytes(path.read_bytes()).signed.version if path.exists() else 0
        best = 0
        for p in self.metadata_dir.glob(f"*.{role}.json"):
            m = _VERSIONED.match(p.name)
            if m and m[2] == role:
                best = max(best, int(m[1]))
        return best

    def path_of(self, role: str, version: int) -> Path:
        name = "timestamp.json" if role == Timestamp.type else f"{version}.{role}.json"
        return self.metadata_dir / name

    def open(self, role: str) -> Metadata[Any]:
        version = self.latest_version(role)
        if version == 0:
            init = {"root": Root, "snapshot": Snapshot, "timestamp": Timestamp}.get(role, Targets)
            md = Metadata(init())
            md.signed.version = 0  # close() bumps to 1
            return md
        return Metadata.from_bytes(self.path_of(role, version).read_bytes())

    def close(self, role: str, md: Metadata[Any]) -> None:
        signers = self.signers.get(role, [])
        if not signers:
            raise ReleaseError(f"no key to sign {role!r} in this session")
        md.signed.version += 1
        md.signed.expires = self.now + EXPIRY.get(role, timedelta(days=30))
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        self.write(role, md)

    def write(self, role: str, md: Metadata[Any]) -> None:
        atomic_write(self.path_of(role, md.signed.version), md.to_bytes())
        if role == Root.type:
            atomic_write(self.metadata_dir / "root.json", md.to_bytes())

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        roles = (Targets.type, *CHANNELS)
        return {f"{r}.json": MetaFile(self.latest_version(r)) for r in roles if self.latest_version(r)}

    @property
    def snapshot_info(self) -> MetaFile:
        return MetaFile(self.latest_version(Snapshot.type))

    # -- freshness -----------------------------------------------------------------------

    def expires(self, role: str) -> datetime:
        expires: datetime = self.open(role).signed.expires
        return expires

    def refresh(self) -> list[str]:
        """Re-sign online roles that expire within `RESIGN_BEFORE`; returns what was re-signed."""
        done = []
        for role in ("canary", "staging"):
            if self.expires(role) - self.now < RESIGN_BEFORE[role]:
                with self.edit_targets(role):
                    pass
                done.append(role)
        snap_due = self.expires(Snapshot.type) - self.now < RESIGN_BEFORE["snapshot"]
        if self.do_snapshot(force=snap_due)[0]:
            done.append(Snapshot.type)
        ts_due = self.expires(Timestamp.type) - self.now < RESIGN_BEFORE["timestamp"]
        if self.do_timestamp(force=ts_due)[0]:
            done.append(Timestamp.type)
        return done
