"""The use-case spec: the guide's template as written, the YAML form, and errors naming line and field."""

from __future__ import annotations

import pytest

from cityedge.protocol.errors import ConfigError, SpecError
from cityedge.protocol.spec import PROFILES, parse_duration, parse_spec

TEMPLATE = """\
Title: Traffic Corridor A - Edge inference
Latency-SLO: 150ms local
Throughput: 40 fps
Retention: 24h raw, metadata -> cloud
AcceptanceTest: Controlled run 48h, 10 incidents, <5% FP
"""


def test_the_guides_template_parses_exactly_as_written() -> None:
    spec = parse_spec(TEMPLATE, "use-case-spec.md")
    assert spec.title == "Traffic Corridor A - Edge inference"
    assert spec.latency.target_ms == 150.0 and spec.latency.percentile == 99.0
    assert spec.throughput_fps == 40.0 and spec.cameras_per_node == 4 and spec.fps_per_camera == 10.0
    assert spec.retention.raw_s == 24 * 3600 and spec.retention.metadata_to_cloud
    acc = spec.acceptance
    assert (acc.hours, acc.incidents, acc.max_fp_rate) == (48.0, 10, 0.05)
    assert spec.cloud_sync.target_s == 5.0  # the guide's "cloud event sync < 5s"
    assert spec.network.profile == "urban-lte" and spec.slots == 2


def test_the_yaml_form_adds_nodes_network_mix_seed_and_run_length() -> None:
    spec = parse_spec(
        TEMPLATE
        + """\
cloud_sync: {target: 2s, percentile: 95, drain: 20s}
nodes: 3
cameras_per_node: 2
network:
  profile: flaky
  outages: [{at: 30s, for: 10s}, {at: 10s, for: 5s}]
  links: {node-2: {latency: 500ms, loss: 1%}}
incidents: {stopped_vehicle: 1}
decoys: {stopped_vehicle: 1}
seed: 3
run: 42s
camera_fps: 25 fps
"""
    )
    # 40 fps per node is the target; each camera sends 25
    assert (spec.nodes, spec.cameras_per_node, spec.fps_per_camera) == (3, 2, 25.0)
    sync = spec.cloud_sync
    assert (sync.target_s, sync.percentile, sync.drain_s) == (2.0, 95.0, 20.0)
    assert [(o.at_s, o.for_s) for o in spec.outages()] == [(10.0, 5.0), (30.0, 10.0)]
    assert spec.link(2).latency_ms == 500.0 and spec.link(2).loss == pytest.approx(0.01)
    assert spec.link(1) == PROFILES["flaky"]
    assert dict(spec.incidents) == {"stopped_vehicle": 1} and dict(spec.decoys) == {"stopped_vehicle": 1}
    assert (spec.seed, spec.run_s, spec.slots) == (3, 42.0, 1)


def test_profile_outages_scale_with_the_run() -> None:
    spec = parse_spec(TEMPLATE + "run: 200s\n")
    ((at, length),) = PROFILES["urban-lte"].outages
    assert [(o.at_s, o.for_s) for o in spec.outages()] == [(round(at * 200, 1), round(length * 200, 1))]


def test_durations_take_units() -> None:
    assert parse_duration("150ms") == pytest.approx(0.15)
    assert parse_duration("2 min") == 120.0 and parse_duration("1d") == 86400.0
    with pytest.raises(ValueError, match="unknown unit 'parsecs'"):
        parse_duration("3 parsecs")


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "spec.yaml")
    assert isinstance(info.value, ConfigError)  # the CLI's error path for bad inputs
    return info.value


def test_an_unknown_field_names_its_line() -> None:
    err = _error(TEMPLATE + "Budget: 2 EUR\n")
    assert (err.line, err.field) == (6, "Budget") and "unknown field" in str(err)
    assert str(err).startswith("spec.yaml:6: Budget:")


def test_an_unknown_nested_field_names_its_line() -> None:
    err = _error(TEMPLATE + "network:\n  profile: clean\n  speed: 5\n")
    assert (err.line, err.field) == (8, "network.speed")


def test_a_bad_unit_names_its_line() -> None:
    err = _error(TEMPLATE.replace("150ms local", "150 parsecs local"))
    assert (err.line, err.field) == (2, "Latency-SLO") and "unknown unit 'parsecs'" in str(err)
    err = _error(TEMPLATE.replace("40 fps", "40 Hz"))
    assert (err.line, err.field) == (3, "Throughput") and "fps" in str(err)
    err = _error(TEMPLATE.replace("24h raw", "24 fortnights raw"))
    assert (err.line, err.field) == (4, "Retention")


@pytest.mark.parametrize(
    ("line", "replacement", "field", "says"),
    [
        (2, "Latency-SLO: 0ms local", "latency", "above 0 ms"),
        (3, "Throughput: 400 fps", "throughput", "100 fps per camera"),
        (3, "Throughput: 0 fps", "throughput", "above 0 fps"),
        (5, "AcceptanceTest: Controlled run 48h, 0 incidents, <5% FP", "acceptance", "at least 1"),
        (5, "AcceptanceTest: Controlled run 48h, 10 incidents, <100% FP", "acceptance", "FP limit"),
    ],
)
def test_an_impossible_value_names_its_line(line: int, replacement: str, field: str, says: str) -> None:
    lines = TEMPLATE.splitlines()
    lines[line - 1] = replacement
    err = _error("\n".join(lines) + "\n")
    assert (err.line, err.field) == (line, field) and says in str(err)


def test_impossible_runs_and_networks_name_their_line() -> None:
    err = _error(TEMPLATE + "run: 20s\n")
    assert (err.line, err.field) == (6, "run") and "too short for one incident slot" in str(err)
    err = _error(TEMPLATE + "nodes: 5\n")
    assert (err.line, err.field) == (6, "nodes") and "20 cameras" in str(err)
    err = _error(TEMPLATE + "network:\n  outages: [{at: 120s, for: 30s}]\n")
    assert (err.line, err.field) == (7, "network.outages")
    err = _error(TEMPLATE + "network: {profile: satellite}\n")
    assert (err.line, err.field) == (6, "network.profile") and "urban-lte" in str(err)
    err = _error(TEMPLATE + "incidents: {alien_landing: 1}\n")
    assert (err.line, err.field) == (6, "incidents") and "unknown incident kind" in str(err)


def test_missing_fields_and_broken_yaml_are_reported() -> None:
    err = _error("Title: only a title\n")
    assert err.field == "latency" and "missing" in str(err)
    err = _error(TEMPLATE + "nodes: [unclosed\n")
    assert err.line >= 6 and "not valid" in str(err)
    err = _error(TEMPLATE + "Title: again\n")
    assert (err.line, err.field) == (6, "Title") and "twice" in str(err)


ROLLOUT_BASE = TEMPLATE + "nodes: 3\ncameras_per_node: 1\nrun: 90s\nrollout:\n"


def test_a_rollout_section_parses_with_its_defaults() -> None:
    spec = parse_spec(ROLLOUT_BASE + "  at: 10s\n  bundle: bad\n  soak: 1s\n")
    r = spec.rollout
    assert r is not None and (r.at_s, r.bundle, r.expect, r.soak_s) == (10.0, "bad", "halted", 1.0)
    assert (r.canary, r.staging, r.waves(3)) == (1, 1, 3)
    assert parse_spec(ROLLOUT_BASE + "  at: 10s\n").rollout.expect == "done"  # type: ignore[union-attr]
    assert parse_spec(TEMPLATE).rollout is None  # the default spec rolls nothing out


@pytest.mark.parametrize(
    ("lines", "line", "field", "says"),
    [
        ("  at: 10s\n  speed: 3\n", 11, "rollout.speed", "unknown field"),
        ("  bundle: good\n", 10, "rollout.at", "missing"),
        ("  at: 10 parsecs\n", 10, "rollout.at", "unknown unit"),
        ("  at: 10s\n  bundle: /tmp/r.tar\n", 10, "rollout.expect", "needs 'expect: done'"),
        ("  at: 10s\n  expect: maybe\n", 11, "rollout.expect", "done or halted"),
        ("  at: 10s\n  canary: 0\n", 11, "rollout.canary", "at least one node"),
        ("  at: 10s\n  canary: 2\n  staging: 2\n", 11, "rollout.canary", "the pilot has 3"),
        ("  at: 10s\n  staging: -1\n", 11, "rollout.staging", "0 nodes or more"),
        ("  at: 2s\n", 10, "rollout.at", "cameras are still starting"),
        ("  at: 60s\n", 10, "rollout.at", "3 waves need about"),
        ("  at: 10s\n  node_soak: 30s\n", 10, "rollout.at", "run longer"),
        ("  at: 10s\n  canary: two\n", 11, "rollout.canary", "not a whole number"),
    ],
)
def test_an_impossible_rollout_names_its_line(lines: str, line: int, field: str, says: str) -> None:
    err = _error(ROLLOUT_BASE + lines)
    assert (err.line, err.field) == (line, field) and says in str(err), str(err)


def test_a_rollout_that_is_not_a_section_is_refused() -> None:
    err = _error(ROLLOUT_BASE.replace("rollout:\n", "rollout: now\n"))
    assert (err.line, err.field) == (9, "rollout") and "key: value" in str(err)
