"""Releases on the wire: the bundle manifest, channel target paths, OTA notices and install reports.

A release is one immutable tar bundle (agent entrypoint, models, rules, node config) named by
its SHA-256; its `manifest.json` says the version, the hardware it runs on and the version
floor it sets. TUF lists it as `{channel}/cityedge-{version}.tar`, next to a signed
`{channel}/latest.json` pointer, so a node finds the newest release of its channel.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

import msgspec

from cityedge.protocol.errors import ReleaseError, UpdateRefused

__all__ = [
    "CHANNELS",
    "MANIFEST_NAME",
    "OUTCOMES",
    "InstallReport",
    "Latest",
    "Manifest",
    "OtaNotice",
    "check_installable",
    "decode_manifest",
    "latest_path",
    "parse_version",
    "target_path",
]

CHANNELS: Final = ("canary", "staging", "stable")
MANIFEST_NAME: Final = "manifest.json"
OUTCOMES: Final = frozenset({"committed", "rolled_back", "refused"})
VERSION_PATTERN: Final = r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$"
_VERSION = re.compile(VERSION_PATTERN)

Version = Annotated[str, msgspec.Meta(pattern=VERSION_PATTERN)]
Hardware = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
Channel = Literal["canary", "staging", "stable"]


def parse_version(version: str) -> tuple[int, int, int]:
    """MAJOR.MINOR.PATCH as a comparable tuple; anything else is a ReleaseError."""
    m = _VERSION.match(version)
    if m is None:
        raise ReleaseError(f"version {version!r} is not MAJOR.MINOR.PATCH")
    return int(m[1]), int(m[2]), int(m[3])


class Manifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`manifest.json` at the root of a bundle.

    `entrypoint` is the workload's argv; `{slot}` expands to the installed slot's directory and
    `{python}` to the node's interpreter. `min_version` is a floor: once this release is
    committed, the node refuses anything older (anti-rollback, as RAUC and SWUpdate do).
    `files` maps every other path in the bundle to its SHA-256.
    """

    version: Version
    agent_version: str
    hardware: list[Hardware]
    min_version: Version
    entrypoint: list[str]
    files: dict[str, str] = {}
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.hardware:
            raise ValueError("hardware must list at least one model")
        if not self.entrypoint:
            raise ValueError("entrypoint must not be empty")
        if parse_version(self.min_version) > parse_version(self.version):
            raise ValueError(f"min_version {self.min_version} is above version {self.version}")


def decode_manifest(data: bytes, source: str) -> Manifest:
    try:
        return msgspec.json.decode(data, type=Manifest)
    except msgspec.ValidationError as exc:
        raise ReleaseError(f"{source}: invalid manifest: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ReleaseError(f"{source}: manifest is not JSON: {exc}") from None


def target_path(channel: str, version: str) -> str:
    _channel(channel)
    parse_version(version)
    return f"{channel}/cityedge-{version}.tar"


def latest_path(channel: str) -> str:
    return f"{_channel(channel)}/latest.json"


def _channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ReleaseError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    return channel


class Latest(msgspec.Struct, frozen=True, kw_only=True):
    """The signed pointer `{channel}/latest.json`: the channel's current release."""

    version: Version
    target: str


class OtaNotice(msgspec.Struct, frozen=True, kw_only=True):
    """What the control plane publishes on a node's `down/ota` topic.

    `update`: follow `channel` (if this node accepts it) and install its latest release, or
    `version` when given. `rollback`: go back to the release before the current one.
    """

    action: Literal["update", "rollback"] = "update"
    channel: Channel | None = None
    version: Version | None = None


class InstallReport(msgspec.Struct, frozen=True, kw_only=True):
    """The body of an `ota` stream record (kind `ota.install`)."""

    version: str
    outcome: Literal["committed", "rolled_back", "refused"]
    reason: str = ""
    detail: str = ""
    from_version: str = ""
    channel: str = ""
    step: str = ""


def check_installable(manifest: Manifest, *, hardware: str, current: str, floor: str, rollback: bool) -> None:
    """Refuse a bundle that is for other hardware, below the node's floor, or not newer.

    `rollback` allows an older version (an operator's wave rollback), never one below `floor`.
    """
    if hardware not in manifest.hardware:
        raise UpdateRefused(
            "hardware",
            f"release {manifest.version} is for {', '.join(manifest.hardware)}, this node is {hardware}",
        )
    wanted = parse_version(manifest.version)
    if wanted < parse_version(floor):
        raise UpdateRefused(
            "downgrade", f"release {manifest.version} is below this node's minimum version {floor}"
        )
    if not rollback and wanted <= parse_version(current):
        raise UpdateRefused("not_newer", f"release {manifest.version} is not newer than {current}")
