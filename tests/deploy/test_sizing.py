"""`cityedge deploy size`: requests are the measured usage plus the headroom, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cityedge.deploy.sizing import load_usage, patch, size
from cityedge.protocol.errors import ConfigError
from tests.support.stack import cli

MIB = 1024 * 1024


def profile(tmp: Path, **extra: object) -> Path:
    path = tmp / "profile.json"
    data = {
        "camera": {"process_cpu_percent": 60.0, "cpus": 2, "fps_sustained": 10.0},
        "memory_bytes": 400 * MIB,
    }
    data.update(extra)
    path.write_text(json.dumps(data))
    return path


def test_requests_are_usage_plus_headroom_and_limits_the_burst_above_them(tmp_path: Path) -> None:
    usage = load_usage(profile(tmp_path))
    # 60 % of 2 cores = 1.2 cores; 400 MiB.
    assert (usage.cpu_cores, usage.memory_bytes) == (pytest.approx(1.2), 400 * MIB)
    sizing = size(usage, headroom=0.4)
    # 1.2 x 1.4 = 1.68 cores = 1680m; 400 x 1.4 = 560 Mi; limits x2 (cpu) and x1.25 (memory).
    assert sizing.resources() == {
        "requests": {"cpu": "1680m", "memory": "560Mi"},
        "limits": {"cpu": "3360m", "memory": "700Mi"},
    }
    # 30 %: 1.2 x 1.3 = 1.56 -> 1560m; 400 x 1.3 = 520 Mi.
    assert size(usage, headroom=0.3).resources()["requests"] == {"cpu": "1560m", "memory": "520Mi"}


def test_cpu_per_frame_at_the_target_rate_wins_over_a_starved_cpu_share(tmp_path: Path) -> None:
    camera = {
        "process_cpu_percent": 15.0,
        "cpus": 2,
        "cpu_ms_per_frame": 11.0,
        "fps_target": 10,
        "cameras": 4,
    }
    usage = load_usage(profile(tmp_path, camera=camera))
    # 11 ms x 10 fps x 4 cameras = 0.44 cores (the 15 % of 2 cores it got was less than it needed)
    assert usage.cpu_cores == pytest.approx(0.44)
    # 0.44 x 1.4 = 0.616 cores -> 616m
    assert size(usage, headroom=0.4).resources()["requests"]["cpu"] == "616m"


def test_the_uplink_share_and_a_measured_rss_in_the_camera_result_count(tmp_path: Path) -> None:
    path = profile(
        tmp_path,
        camera={"process_cpu_percent": 25.0, "cpus": 4, "max_rss_bytes": 300 * MIB},
        uplink={"records_per_s": 20000, "cpu_cores": 0.1},
    )
    sizing = size(load_usage(path), headroom=0.5)
    # (1.0 + 0.1) x 1.5 = 1.65 cores; 300 x 1.5 = 450 Mi.
    assert sizing.resources()["requests"] == {"cpu": "1650m", "memory": "450Mi"}


def test_the_command_writes_the_patch_the_edge_overlay_applies(tmp_path: Path) -> None:
    out = tmp_path / "sizing.yaml"
    done = cli("deploy", "size", "--bench", str(profile(tmp_path)), "--headroom", "0.5", "--out", str(out))
    printed = json.loads(done.stdout)
    assert printed["requests"] == {"cpu": "1800m", "memory": "600Mi"}
    doc = yaml.safe_load(out.read_text())
    assert (doc["kind"], doc["metadata"]["name"]) == ("DaemonSet", "cityedge-agent")
    [container] = doc["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "agent" and container["resources"]["requests"] == printed["requests"]
    assert container["resources"]["limits"] == {"cpu": "3600m", "memory": "750Mi"}
    assert patch(size(load_usage(profile(tmp_path)), 0.5)).startswith("# Written by `cityedge deploy size")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{not json", r"profile.json: line 1: not JSON"),
        ('{"uplink": {}}', r"expected an object with `camera`"),
        ('{"camera": {"process_cpu_percent": "lots", "cpus": 2}}', r"camera: `process_cpu_percent` must be"),
        (
            '{"camera": {"process_cpu_percent": 10, "cpus": 2}}',
            r"`memory_bytes` must be a non-negative number",
        ),
    ],
)
def test_a_bad_profile_is_refused_naming_the_file_and_field(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "profile.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=error):
        load_usage(path)


def test_headroom_outside_the_guides_range_is_refused(tmp_path: Path) -> None:
    usage = load_usage(profile(tmp_path))
    with pytest.raises(ConfigError, match=r"0\.3 to 0\.5"):
        size(usage, headroom=0.1)
