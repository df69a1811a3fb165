"""Release bundles: a deterministic tar of a release directory, named by its SHA-256.

`build` hashes every file into the manifest's `files` and writes the tar with fixed owners,
modes and times, so the same directory always makes the same bytes (and the same hash).
`inspect` reads a bundle back and checks that its files match its manifest.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import msgspec

from cityedge.protocol.errors import ReleaseError
from cityedge.protocol.release import MANIFEST_NAME, Manifest, decode_manifest

__all__ = ["Bundle", "build", "inspect"]


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest
    sha256: str
    length: int


def _entry(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = size, mode, 0, 0, 0
    info.uname = info.gname = ""
    return info


def build(source: Path, out: Path) -> Bundle:
    """Make `out` from directory `source` (which holds manifest.json without `files`)."""
    manifest_file = source / MANIFEST_NAME
    if not manifest_file.is_file():
        raise ReleaseError(f"{source}: no {MANIFEST_NAME}")
    base = decode_manifest(manifest_file.read_bytes(), str(manifest_file))
    files = sorted(p for p in source.rglob("*") if p.is_file() and p != manifest_file)
    hashes = {p.relative_to(source).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    manifest = msgspec.structs.replace(base, files=hashes)
    encoded = msgspec.json.format(msgspec.json.encode(manifest))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry(MANIFEST_NAME, len(encoded)), io.BytesIO(encoded))
        for p in files:
            mode = 0o755 if p.stat().st_mode & 0o100 else 0o644
            data = p.read_bytes()
            tar.addfile(_entry(p.relative_to(source).as_posix(), len(data), mode), io.BytesIO(data))
    tmp.replace(out)
    return inspect(out)


def inspect(path: Path) -> Bundle:
    """Read and check a bundle: a tar whose manifest lists every other member's SHA-256."""
    try:
        data = path.read_bytes()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            manifest = _check_members(tar, str(path))
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot read bundle: {exc}") from None
    except tarfile.TarError as exc:
        raise ReleaseError(f"{path}: not a tar bundle: {exc}") from None
    return Bundle(path, manifest, hashlib.sha256(data).hexdigest(), len(data))


def _check_members(tar: tarfile.TarFile, source: str) -> Manifest:
    members = {m.name: m for m in tar.getmembers()}
    if MANIFEST_NAME not in members:
        raise ReleaseError(f"{source}: bundle has no {MANIFEST_NAME}")
    manifest = decode_manifest(_read(tar, members[MANIFEST_NAME]), f"{source}:{MANIFEST_NAME}")
    listed = set(manifest.files)
    present = {n for n, m in members.items() if m.isfile() and n != MANIFEST_NAME}
    if listed != present:
        raise ReleaseError(
            f"{source}: files not in the manifest {sorted(present - listed)}, "
            f"missing {sorted(listed - present)}"
        )
    for name, digest in manifest.files.items():
        if hashlib.sha256(_read(tar, members[name])).hexdigest() != digest:
            raise ReleaseError(f"{source}: {name} does not match its manifest hash")
    return manifest


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise ReleaseError(f"{member.name} is not a regular file")
    return f.read()
