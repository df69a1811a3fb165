"""The use-case spec as typed, frozen values, and the link profiles a pilot's network follows.

`protocol.spec` parses text into these; the pilot reads them. Pure data and arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

__all__ = [
    "INCIDENT_KINDS",
    "LEAD_S",
    "MAX_CAMERAS",
    "OTA_SETTLE_S",
    "PROFILES",
    "ROLLOUT_BUNDLES",
    "TAIL_S",
    "AcceptanceTest",
    "LatencySlo",
    "LinkProfile",
    "NetworkSpec",
    "Outage",
    "RetentionSpec",
    "RolloutSpec",
    "SyncSlo",
    "UseCaseSpec",
    "slot_seconds",
]

INCIDENT_KINDS = ("stopped_vehicle", "wrong_way", "congestion")
MAX_CAMERAS = 16  # what this reference 2-core machine holds at 10 fps (docs/benchmarks.md)
LEAD_S = 12.0  # traffic settles before the first staged incident
TAIL_S = 5.0  # the last detection needs a moment before the cameras stop


@dataclass(frozen=True)
class LinkProfile:
    """A node's link to the cloud: one-way latency and jitter, TCP segment loss, rate, outages.

    Outages are (start, duration) as fractions of the run, so a short run keeps their shape.
    """

    latency_ms: float
    jitter_ms: float
    loss: float  # probability that a segment is lost and waits for a retransmission
    rate_kbit_s: float | None  # None: as fast as loopback
    outages: tuple[tuple[float, float], ...] = ()


PROFILES: Mapping[str, LinkProfile] = MappingProxyType(
    {
        "clean": LinkProfile(latency_ms=1.0, jitter_ms=0.0, loss=0.0, rate_kbit_s=None),
        "urban-lte": LinkProfile(
            latency_ms=45.0, jitter_ms=15.0, loss=0.005, rate_kbit_s=5000.0, outages=((0.40, 0.115),)
        ),
        "flaky": LinkProfile(
            latency_ms=120.0,
            jitter_ms=60.0,
            loss=0.03,
            rate_kbit_s=1000.0,
            outages=((0.20, 0.06), (0.45, 0.09), (0.72, 0.05)),
        ),
    }
)


@dataclass(frozen=True)
class LatencySlo:
    target_ms: float
    percentile: float = 99.0


@dataclass(frozen=True)
class SyncSlo:
    """Source timestamp to stored in the cloud, outside outages; and backlog drain after each."""

    target_s: float = 5.0
    percentile: float = 99.0
    drain_s: float = 30.0


@dataclass(frozen=True)
class RetentionSpec:
    raw_s: float = 86_400.0
    metadata_to_cloud: bool = True


@dataclass(frozen=True)
class AcceptanceTest:
    hours: float = 48.0
    incidents: int = 10
    max_fp_rate: float = 0.05  # false positives as a share of reported incidents
    min_recall: float = 0.9


@dataclass(frozen=True)
class Outage:
    at_s: float
    for_s: float


@dataclass(frozen=True)
class NetworkSpec:
    profile: str = "urban-lte"
    outages: tuple[Outage, ...] | None = None  # None: the profile's own schedule
    links: Mapping[int, Mapping[str, float]] = field(default_factory=dict)  # node number -> overrides


ROLLOUT_BUNDLES = ("good", "bad")  # bundles the pilot builds; anything else is a path
OTA_SETTLE_S = 2.0  # a pilot node's health gates ignore its workload's first seconds
WAVE_OVERHEAD_S = 4.0  # notice, TUF refresh, download, install and restart: a generous bound


@dataclass(frozen=True)
class RolloutSpec:
    """Publish a release `at_s` into the run and roll it out over the pilot's nodes.

    The first `canary` nodes accept every channel (the canary cohort), the next `staging`
    accept staging and stable, the rest stable only. `soak_s` is the control plane's wait after a
    wave's last healthy report, `node_soak_s` each node's own soak under its health gates.
    `expect` is what the run must show: "done" (every node committed it) or "halted" (stopped
    after the canary, which rolled back).
    """

    at_s: float
    bundle: str = "good"
    expect: str = "done"
    canary: int = 1
    staging: int = 1
    soak_s: float = 2.0
    node_soak_s: float = 4.0

    def waves(self, nodes: int) -> int:
        return 1 + (self.staging > 0) + (nodes > self.canary + self.staging)

    def needs_s(self, nodes: int) -> float:
        """Seconds from publishing to the last wave's end if every wave passes."""
        return self.waves(nodes) * (OTA_SETTLE_S + self.node_soak_s + self.soak_s + WAVE_OVERHEAD_S)


@dataclass(frozen=True)
class UseCaseSpec:
    title: str
    latency: LatencySlo
    throughput_fps: float  # per node, all its cameras together
    retention: RetentionSpec = RetentionSpec()
    acceptance: AcceptanceTest = AcceptanceTest()
    cloud_sync: SyncSlo = SyncSlo()
    nodes: int = 2
    cameras_per_node: int = 4
    network: NetworkSpec = NetworkSpec()
    incidents: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(INCIDENT_KINDS, 1))
    decoys: Mapping[str, int] = field(default_factory=dict)
    seed: int = 7
    run_s: float = 130.0
    camera_fps: float | None = None  # what each camera sends; None: throughput / cameras_per_node
    rollout: RolloutSpec | None = None  # an OTA release rolled out mid-run (docs/pilot.md)
    source: str = "<spec>"

    @property
    def fps_per_camera(self) -> float:
        if self.camera_fps is not None:
            return self.camera_fps
        return self.throughput_fps / self.cameras_per_node

    @property
    def slots(self) -> int:
        """Incident slots each camera stages (each holds one of every kind in the mix)."""
        return int((self.run_s - LEAD_S - TAIL_S) // slot_seconds(self.incidents))

    def link(self, node: int) -> LinkProfile:
        """Node `node`'s (1-based) link: the profile with this node's overrides."""
        profile = PROFILES[self.network.profile]
        override = self.network.links.get(node, {})
        return replace(
            profile,
            latency_ms=override.get("latency_ms", profile.latency_ms),
            jitter_ms=override.get("jitter_ms", profile.jitter_ms),
            loss=override.get("loss", profile.loss),
        )

    def outages(self) -> tuple[Outage, ...]:
        if self.network.outages is not None:
            return self.network.outages
        return tuple(
            Outage(round(a * self.run_s, 1), round(d * self.run_s, 1))
            for a, d in PROFILES[self.network.profile].outages
        )


def slot_seconds(mix: Mapping[str, int]) -> float:
    """A slot fits a congestion episode (28 s) and a wrong-way car after the queue cleared;
    a stopped vehicle alone needs 25 s."""
    return 55.0 if mix.get("congestion") or mix.get("wrong_way") else 25.0
