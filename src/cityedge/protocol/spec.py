"""The use-case spec a pilot is judged against: the guide's one-page template, or its fuller YAML form.

The template (Step 1 of the field guide) is five lines, `Title:`, `Latency-SLO: 150ms local`,
`Throughput: 40 fps`, `Retention: 24h raw, metadata -> cloud` and `AcceptanceTest: Controlled
run 48h, 10 incidents, <5% FP`. It is valid YAML, so one reader takes both forms: the fuller
form adds lowercase keys (nodes, cameras, network, incident mix, seed, run length). Pure: text
in, a frozen `UseCaseSpec` out; every error is a `SpecError` naming the line and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import yaml

from cityedge.protocol.errors import SpecError
from cityedge.protocol.spec_model import (
    LEAD_S,
    MAX_CAMERAS,
    PROFILES,
    ROLLOUT_BUNDLES,
    TAIL_S,
    NetworkSpec,
    Outage,
    RolloutSpec,
    UseCaseSpec,
    slot_seconds,
)
from cityedge.protocol.spec_values import (
    acceptance,
    count,
    latency,
    milliseconds,
    mix,
    parse_duration,
    retention,
    sync,
    throughput,
)

# The values it parses into are listed in spec_model; these are the parser and the names its
# callers take from here.
__all__ = ["PROFILES", "UseCaseSpec", "parse_duration", "parse_spec"]


def _seconds(value: Any) -> float:
    return parse_duration(str(value))


_FIELDS: dict[str, Callable[[Any], Any]] = {
    "title": str,
    "latency": latency,
    "throughput": throughput,
    "retention": retention,
    "acceptance": acceptance,
    "cloud_sync": sync,
    "nodes": count,
    "cameras_per_node": count,
    "network": lambda v: v,  # checked by _network with its own lines
    "incidents": mix,
    "decoys": mix,
    "seed": count,
    "run": _seconds,
    "camera_fps": throughput,
    "rollout": lambda v: v,  # checked by _rollout with its own lines
}
_TEMPLATE = {
    "Title": "title",
    "Latency-SLO": "latency",
    "Throughput": "throughput",
    "Retention": "retention",
    "AcceptanceTest": "acceptance",
}
_REQUIRED = ("title", "latency", "throughput")


# --- the reader -----------------------------------------------------------------------------


class _Reader:
    """YAML nodes with their lines: every value is converted where its line is known."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.loader = yaml.SafeLoader(text)
        try:
            self.root = self.loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpecError(source, mark.line + 1 if mark else 0, "<spec>", f"not valid: {problem}") from None

    def fail(self, node: yaml.Node | None, name: str, problem: str) -> SpecError:
        return SpecError(self.source, node.start_mark.line + 1 if node is not None else 0, name, problem)

    def items(self, node: yaml.Node | None, where: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where, "expected 'key: value' lines")
        return [(str(k.value), k, v) for k, v in node.value]

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def convert(self, node: yaml.Node, name: str, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(self.value(node))
        except (ValueError, TypeError) as exc:
            raise self.fail(node, name, str(exc)) from None


def parse_spec(text: str, source: str = "<spec>") -> UseCaseSpec:
    """Parse the one-page template or the YAML form; a `SpecError` names the line and field."""
    reader = _Reader(text, source)
    if reader.root is None:
        raise SpecError(source, 0, "<spec>", "empty spec")
    values: dict[str, Any] = {}
    lines: dict[str, yaml.Node] = {}
    for key, key_node, node in reader.items(reader.root, "<spec>"):
        name = _TEMPLATE.get(key, key)
        if name not in _FIELDS:
            known = ", ".join([*_TEMPLATE, *_FIELDS])
            raise reader.fail(key_node, key, f"unknown field (known: {known})")
        if name in values:
            raise reader.fail(key_node, key, "given twice")
        lines[name] = node
        nested = {"network": _network, "rollout": _rollout}.get(name)
        values[name] = nested(reader, node) if nested else reader.convert(node, key, _FIELDS[name])
    for name in _REQUIRED:
        if name not in values:
            raise SpecError(source, 0, name, "missing (the template needs Title, Latency-SLO and Throughput)")
    spec = _build(values, source)
    _check(spec, reader, lines)
    return spec


def _build(values: dict[str, Any], source: str) -> UseCaseSpec:
    renamed = {"run_s" if k == "run" else k: v for k, v in values.items()}
    renamed["throughput_fps"] = renamed.pop("throughput")
    return UseCaseSpec(source=source, **renamed)


def _network(reader: _Reader, node: yaml.Node) -> NetworkSpec:
    spec = NetworkSpec()
    for key, key_node, value in reader.items(node, "network"):
        where = f"network.{key}"
        if key == "profile":
            name = str(reader.value(value))
            if name not in PROFILES:
                raise reader.fail(value, where, f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
            spec = replace(spec, profile=name)
        elif key == "outages":
            spec = replace(spec, outages=_outages(reader, value, where))
        elif key == "links":
            spec = replace(spec, links=_links(reader, value, where))
        else:
            raise reader.fail(key_node, where, "unknown field (known: profile, outages, links)")
    return spec


def _outages(reader: _Reader, node: yaml.Node, where: str) -> tuple[Outage, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise reader.fail(node, where, "expected a list of {at: 50s, for: 15s}")
    out = []
    for item in node.value:
        fields = {k: v for k, _, v in reader.items(item, where)}
        if set(fields) != {"at", "for"}:
            raise reader.fail(item, where, "each outage needs exactly 'at' and 'for'")
        at, length = (
            reader.convert(fields[k], f"{where}.{k}", lambda v: parse_duration(str(v))) for k in ("at", "for")
        )
        if length <= 0:
            raise reader.fail(fields["for"], f"{where}.for", "an outage lasts longer than 0 s")
        out.append(Outage(at, length))
    return tuple(sorted(out, key=lambda o: o.at_s))


_LINK_FIELDS = {"latency": "latency_ms", "jitter": "jitter_ms"}


def _links(reader: _Reader, node: yaml.Node, where: str) -> dict[int, dict[str, float]]:
    links: dict[int, dict[str, float]] = {}
    for key, key_node, value in reader.items(node, where):
        m = re.fullmatch(r"node-?(\d+)", key)
        if not m:
            raise reader.fail(key_node, f"{where}.{key}", "name a node as node-1, node-2, ...")
        override: dict[str, float] = {}
        for field_name, field_node, v in reader.items(value, f"{where}.{key}"):
            full = f"{where}.{key}.{field_name}"
            if field_name in _LINK_FIELDS:
                override[_LINK_FIELDS[field_name]] = reader.convert(v, full, milliseconds)
            elif field_name == "loss":
                override["loss"] = reader.convert(v, full, lambda x: float(str(x).rstrip("%")) / 100.0)
            else:
                raise reader.fail(field_node, full, "unknown field (known: latency, jitter, loss)")
        links[int(m.group(1))] = override
    return links


def _check(spec: UseCaseSpec, reader: _Reader, lines: Mapping[str, yaml.Node]) -> None:
    """Values that parse but cannot be met by any run: each names its line."""
    problems = [
        ("latency", spec.latency.target_ms <= 0, "a latency target must be above 0 ms"),
        ("latency", not 0 < spec.latency.percentile <= 100, "the percentile must be in (0, 100]"),
        ("throughput", spec.throughput_fps <= 0, "throughput must be above 0 fps"),
        ("camera_fps", spec.camera_fps is not None and spec.camera_fps <= 0, "a camera sends above 0 fps"),
        ("throughput", spec.fps_per_camera > 60, f"{spec.fps_per_camera:g} fps per camera "
         f"({spec.cameras_per_node} per node); a camera is judged at 60 fps at most"),
        ("throughput", spec.throughput_fps > spec.fps_per_camera * spec.cameras_per_node,
         f"{spec.throughput_fps:g} fps per node is more than its cameras send "
         f"({spec.cameras_per_node} x {spec.fps_per_camera:g} fps)"),
        ("nodes", spec.nodes < 1, "a pilot needs at least one node"),
        ("cameras_per_node", spec.cameras_per_node < 1, "a node needs at least one camera"),
        ("nodes", spec.nodes * spec.cameras_per_node > MAX_CAMERAS,
         f"{spec.nodes * spec.cameras_per_node} cameras; one machine holds {MAX_CAMERAS} at 10 fps"),
        ("acceptance", spec.acceptance.hours <= 0, "the controlled run must last longer than 0 h"),
        ("acceptance", spec.acceptance.incidents < 1, "the acceptance test needs at least 1 incident"),
        ("acceptance", not 0 < spec.acceptance.max_fp_rate < 1, "the FP limit must be between 0% and 100%"),
        ("acceptance", not 0 < spec.acceptance.min_recall <= 1, "min_recall must be in (0, 1]"),
        ("cloud_sync", spec.cloud_sync.target_s <= 0 or spec.cloud_sync.drain_s <= 0,
         "sync and drain targets must be above 0 s"),
        ("retention", spec.retention.raw_s <= 0, "raw retention must be longer than 0 s"),
        ("incidents", not any(spec.incidents.values()), "stage at least one incident kind"),
        ("decoys", any(n > spec.incidents.get(k, 0) for k, n in spec.decoys.items()),
         "a decoy replaces a staged incident of its kind: stage that kind too"),
        ("run", spec.slots < 1, f"{spec.run_s:g} s is too short for one incident slot "
         f"(needs {LEAD_S + TAIL_S + slot_seconds(spec.incidents):g} s)"),
        ("run", spec.run_s > 3600, "a compressed run lasts an hour at most"),
    ]  # fmt: skip
    for name, bad, problem in problems:
        if bad:
            raise reader.fail(lines.get(name), name, problem)
    _check_network(spec, reader, lines.get("network"))
    if spec.rollout is not None:
        _check_rollout(spec, spec.rollout, reader, lines["rollout"])


def _check_network(spec: UseCaseSpec, reader: _Reader, node: yaml.Node | None) -> None:
    end = 0.0
    for outage in spec.outages():
        if outage.at_s < end or outage.at_s + outage.for_s > spec.run_s:
            raise reader.fail(node, "network.outages", "outages must not overlap and must end within the run")
        end = outage.at_s + outage.for_s
    for number, override in spec.network.links.items():
        if not 1 <= number <= spec.nodes:
            raise reader.fail(node, "network.links", f"node-{number} is not one of the {spec.nodes} nodes")
        if any(v < 0 for v in override.values()) or override.get("loss", 0.0) >= 1:
            raise reader.fail(node, "network.links", "latency, jitter and loss must be >= 0 (loss < 100%)")
        if math.isnan(sum(override.values())):
            raise reader.fail(node, "network.links", "not a number")


# --- rollout --------------------------------------------------------------------------------

_ROLLOUT_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "at": ("at_s", _seconds),
    "bundle": ("bundle", str),
    "expect": ("expect", str),
    "canary": ("canary", count),
    "staging": ("staging", count),
    "soak": ("soak_s", _seconds),
    "node_soak": ("node_soak_s", _seconds),
}


def _rollout(reader: _Reader, node: yaml.Node) -> RolloutSpec:
    values: dict[str, Any] = {}
    for key, key_node, value in reader.items(node, "rollout"):
        where = f"rollout.{key}"
        if key not in _ROLLOUT_FIELDS:
            raise reader.fail(key_node, where, f"unknown field (known: {', '.join(_ROLLOUT_FIELDS)})")
        name, fn = _ROLLOUT_FIELDS[key]
        values[name] = (reader.convert(value, where, fn), value)
    if "at_s" not in values:
        raise reader.fail(node, "rollout.at", "missing: when the release is published, e.g. 'at: 10s'")
    bundle = values.get("bundle", ("good", node))[0]
    if "expect" not in values and bundle not in ROLLOUT_BUNDLES:
        raise reader.fail(
            node, "rollout.expect", "a bundle given by path needs 'expect: done' or 'expect: halted'"
        )
    expect = values.pop("expect", ("done" if bundle == "good" else "halted", node))
    if expect[0] not in ("done", "halted"):
        raise reader.fail(expect[1], "rollout.expect", f"{expect[0]!r}: expected done or halted")
    return RolloutSpec(expect=expect[0], **{k: v for k, (v, _) in values.items()})


def _check_rollout(spec: UseCaseSpec, r: RolloutSpec, reader: _Reader, node: yaml.Node) -> None:
    problems = [
        ("canary", r.canary < 1, "the canary cohort needs at least one node"),
        ("canary", r.canary + r.staging > spec.nodes,
         f"{r.canary} canary + {r.staging} staging nodes, but the pilot has {spec.nodes}"),
        ("staging", r.staging < 0, "the staging wave has 0 nodes or more"),
        ("node_soak", r.node_soak_s <= 0, "a node soaks a release for longer than 0 s"),
        ("at", r.at_s < LEAD_S / 2, f"publish at {LEAD_S / 2:g} s or later: the cameras are still starting"),
        ("at", r.at_s + r.needs_s(spec.nodes) > spec.run_s - TAIL_S,
         f"{r.waves(spec.nodes)} waves need about {r.needs_s(spec.nodes):g} s after 'at' and must end "
         f"{TAIL_S:g} s before the run does ({spec.run_s:g} s): publish earlier, soak less or run longer"),
    ]  # fmt: skip
    where = {key: value for key, _, value in reader.items(node, "rollout")}
    for name, bad, problem in problems:
        if bad:
            raise reader.fail(where.get(name, node), f"rollout.{name}", problem)
