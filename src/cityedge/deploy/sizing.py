"""Requests and limits from benchmarks: measured usage plus headroom (the guide's 30-50 %).

A node profile is one JSON file: what `cityedge bench camera` printed for the node's cameras
(`camera`: CPU per frame x target fps x cameras, or else its CPU share of the machine),
optionally what `cityedge bench uplink` printed (`uplink`), and the agent's peak resident
memory under that load (`memory_bytes`, unless the camera result carries `max_rss_bytes`).
`size` turns it into the agent container's requests (usage x (1 + headroom)) and limits
(requests x a burst factor); `patch` writes them as the edge overlay's kustomize patch.
Pure: no I/O but reading the file the caller names.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cityedge.protocol.errors import ConfigError

__all__ = ["Sizing", "Usage", "load_usage", "patch", "size"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    """What the agent used under the profile's load."""

    cpu_cores: float
    memory_bytes: int
    source: str


@dataclass(frozen=True)
class Sizing:
    usage: Usage
    headroom: float
    cpu_request_m: int
    cpu_limit_m: int
    memory_request_mi: int
    memory_limit_mi: int

    def resources(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": f"{self.cpu_request_m}m", "memory": f"{self.memory_request_mi}Mi"},
            "limits": {"cpu": f"{self.cpu_limit_m}m", "memory": f"{self.memory_limit_mi}Mi"},
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.usage.source,
            "measured": {"cpu_cores": self.usage.cpu_cores, "memory_bytes": self.usage.memory_bytes},
            "headroom": self.headroom,
            **self.resources(),
        }


def _number(data: dict[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: `{key}` must be a non-negative number, got {value!r}")
    return float(value)


def load_usage(path: Path) -> Usage:
    """Read a node profile; a missing or malformed field is named with the file."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the benchmark file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("camera"), dict):
        raise ConfigError(f"{path}: expected an object with `camera` (the output of `cityedge bench camera`)")
    camera = data["camera"]
    cores = _camera_cores(camera, f"{path}: camera")
    uplink = data.get("uplink")
    if uplink is not None:
        if not isinstance(uplink, dict):
            raise ConfigError(f"{path}: `uplink` must be the object `cityedge bench uplink` printed")
        cores += _number(uplink, "cpu_cores", f"{path}: uplink") if "cpu_cores" in uplink else 0.0
    owner = camera if "max_rss_bytes" in camera else data
    memory = _number(owner, "max_rss_bytes" if owner is camera else "memory_bytes", str(path))
    return Usage(cpu_cores=cores, memory_bytes=int(memory), source=str(path))


def _camera_cores(camera: dict[str, Any], where: str) -> float:
    """CPU time per frame at the profile's target rate: on a busy benchmark machine the process
    got less CPU than it needed (and dropped frames), so its CPU share understates the node."""
    if "cpu_ms_per_frame" in camera:
        per_frame_s = _number(camera, "cpu_ms_per_frame", where) / 1000
        return per_frame_s * _number(camera, "fps_target", where) * _number(camera, "cameras", where)
    return _number(camera, "process_cpu_percent", where) / 100 * _number(camera, "cpus", where)


def size(usage: Usage, headroom: float = 0.4, cpu_burst: float = 2.0, memory_burst: float = 1.25) -> Sizing:
    """Requests = usage x (1 + headroom), rounded up (millicores, MiB); limits = requests x burst."""
    if not 0.3 <= headroom <= 0.5:
        raise ConfigError(f"headroom {headroom}: the guide asks for 0.3 to 0.5 (30-50 %)")
    if cpu_burst < 1 or memory_burst < 1:
        raise ConfigError("a limit below its request is not allowed: burst factors must be >= 1")
    cpu_m = math.ceil(round(usage.cpu_cores * (1 + headroom) * 1000, 6))
    mem_mi = math.ceil(round(usage.memory_bytes * (1 + headroom) / MIB, 6))
    return Sizing(
        usage=usage,
        headroom=headroom,
        cpu_request_m=max(cpu_m, 1),
        cpu_limit_m=max(math.ceil(cpu_m * cpu_burst), 1),
        memory_request_mi=max(mem_mi, 1),
        memory_limit_mi=max(math.ceil(mem_mi * memory_burst), 1),
    )


def patch(sizing: Sizing, workload: str = "cityedge-agent", container: str = "agent") -> str:
    """The strategic-merge patch the edge overlay applies (kustomize `patches:`)."""
    doc = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": workload},
        "spec": {
            "template": {"spec": {"containers": [{"name": container, "resources": sizing.resources()}]}}
        },
    }
    u = sizing.usage
    head = (
        f"# Written by `cityedge deploy size --bench {Path(u.source).name} --headroom {sizing.headroom}`:\n"
        f"# measured {u.cpu_cores:.3f} cores and {u.memory_bytes / MIB:.1f} MiB; requests add the headroom,\n"
        "# limits allow bursts above them. Re-run it when the node profile's benchmark changes.\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False)
