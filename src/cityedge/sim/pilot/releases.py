"""The pilot's release repository and bundles, and each node's OTA install.

At start-up (only when the spec has a `rollout` section) the pilot holds the key ceremony
(`init_repository`: root, targets and the release managers' keys in an offline directory
outside the repository), builds the factory release every node is provisioned with and the
release the rollout publishes: `good` (its workload keeps running), `bad` (its workload
exits a second after it starts, so the node's health gates fail) or a bundle given by path.
Each node gets an `OtaConfig`: its install's copy of root v1 as the TUF trust anchor, the
control plane's `/tuf` over HTTPS, health gates on its own agent's metrics, and a `down/ota`
listener through its own impaired link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cityedge.protocol.errors import ConfigError, ReleaseError
from cityedge.protocol.release import parse_version
from cityedge.protocol.spec_model import OTA_SETTLE_S, ROLLOUT_BUNDLES, RolloutSpec

__all__ = ["FACTORY_VERSION", "HARDWARE", "PilotReleases", "fleet", "given_bundle"]

HARDWARE = "pilot-sim"  # the inventory's model
FACTORY_VERSION = "1.0.0"
RELEASE_VERSION = "1.1.0"
CRASH_AFTER_S = 1.0
MIN_FPS_SHARE = 0.5  # a camera below half its frame rate fails the trial


def fleet(nodes: list[str], rollout: RolloutSpec) -> dict[str, tuple[str, ...]]:
    """Node -> the channels its install accepts: canary cohort, then staging, then stable only."""
    out: dict[str, tuple[str, ...]] = {}
    for i, node in enumerate(nodes):
        if i < rollout.canary:
            out[node] = ("canary", "staging", "stable")
        elif i < rollout.canary + rollout.staging:
            out[node] = ("staging", "stable")
        else:
            out[node] = ("stable",)
    return out


def _build(out_dir: Path, version: str, behaviour: dict[str, Any]) -> Path:
    from cityedge.cloud.releases.bundle import build

    src = out_dir / f"src-{version}"
    (src / "config").mkdir(parents=True, exist_ok=True)
    manifest = {
        "version": version,
        "agent_version": version,
        "hardware": [HARDWARE],
        "min_version": FACTORY_VERSION,
        "entrypoint": ["{python}", "workload.py"],
        "notes": "cityedge pilot release",
    }
    (src / "manifest.json").write_text(json.dumps(manifest))
    workload = resources.files(__package__).joinpath("release_workload.py").read_text()
    (src / "workload.py").write_text(workload)
    (src / "behaviour.json").write_text(json.dumps(behaviour))
    (src / "config" / "node.yaml").write_text(f"# pilot release {version}\n")
    return build(src, out_dir / f"cityedge-{version}.tar").path


def given_bundle(rollout: RolloutSpec, spec_source: str) -> Path | None:
    """The bundle a spec names by path (relative to the spec file), checked before anything
    starts: a readable bundle, for the pilot's hardware, newer than the factory release."""
    from cityedge.cloud.releases.bundle import inspect

    if rollout.bundle in ROLLOUT_BUNDLES:
        return None
    path = Path(rollout.bundle)
    if not path.is_absolute():
        path = Path(spec_source).parent / path
    where = f"{spec_source}: rollout.bundle {path}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file")
    try:
        manifest = inspect(path).manifest
    except ReleaseError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if HARDWARE not in manifest.hardware:
        raise ConfigError(f"{where}: built for {manifest.hardware}, the pilot's nodes are {HARDWARE}")
    if parse_version(manifest.version) <= parse_version(FACTORY_VERSION):
        raise ConfigError(
            f"{where}: version {manifest.version} is not newer than the factory release {FACTORY_VERSION}"
        )
    return path


@dataclass(frozen=True)
class PilotReleases:
    directory: Path
    offline: Path
    release_managers: tuple[Path, ...]
    factory: Path
    bundle: Path

    @classmethod
    def create(cls, workdir: Path, rollout: RolloutSpec, spec_source: str) -> PilotReleases:
        from cityedge.cloud.releases.channels import init_repository

        bundles = workdir / "bundles"
        bundle = given_bundle(rollout, spec_source)
        if bundle is None:
            behaviour = {"crash_after_s": CRASH_AFTER_S} if rollout.bundle == "bad" else {}
            bundle = _build(bundles, RELEASE_VERSION, behaviour)
        factory = _build(bundles, FACTORY_VERSION, {})
        offline = workdir / "release-keys-offline"
        keys = init_repository(workdir / "releases", offline, datetime.now(UTC))
        return cls(workdir / "releases", offline, tuple(keys["release_managers"]), factory, bundle)

    def node_config(self, node: str, accepts: tuple[str, ...], env: dict[str, Any]) -> dict[str, Any]:
        """The node's OTA config; `env` has api_url, cafile, metrics_port, camera_fps, notify."""
        home = Path(env["home"])
        install = home / "install"  # what the node's image ships, outside the writable ota_dir
        install.mkdir(parents=True, exist_ok=True)
        (install / "root.json").write_bytes((self.directory / "metadata" / "1.root.json").read_bytes())
        return {
            "node_id": node,
            "district": env["district"],
            "hardware": HARDWARE,
            "ota_dir": str(home / "ota"),
            "trusted_root": str(install / "root.json"),
            "repository_url": f"{env['api_url']}/tuf",
            "cafile": str(env["cafile"]),
            "accept_channels": list(accepts),
            "check_interval_s": 3600.0,  # the rollout's notices move the nodes; no schedule in a short run
            "health": {
                "metrics_url": f"http://127.0.0.1:{env['metrics_port']}/metrics",
                "settle_s": OTA_SETTLE_S,
                "soak_s": env["node_soak_s"],
                "min_fps": round(env["camera_fps"] * MIN_FPS_SHARE, 2),
                "require_uplink": True,
                "poll_s": 0.5,
            },
            "notify": env["notify"],
        }


def attach_releases(app: Any, releases: PilotReleases, engine: Any, operator_token: str) -> Any:
    """The control plane's release routes on the pilot's API: `/tuf` (the repository the nodes
    verify), releases, rollouts and the audit log; the operator token keeps working."""
    import hashlib

    from cityedge.cloud.api.ota_state import OtaState, attach_ota
    from cityedge.cloud.auth.service import AuthService
    from cityedge.cloud.store.auth import AuthStore
    from cityedge.cloud.store.releases import RolloutStore

    legacy = [hashlib.sha256(operator_token.encode()).hexdigest()]
    auth = AuthService(AuthStore(engine), legacy_tokens=legacy)
    attach_ota(app, OtaState(releases.directory, auth, RolloutStore(engine)))
    return auth


def listener_acls(district: str, nodes: list[str]) -> tuple[Any, ...]:
    """Broker ACLs for the nodes' OTA listeners: identity `{node}-ota` reads its node's down/ota."""
    from cityedge.deploy.mosquitto import ServiceAcl
    from cityedge.protocol.topics import down_topic

    return tuple(ServiceAcl(f"{n}-ota", read=(down_topic(district, n, "ota"),)) for n in nodes)
