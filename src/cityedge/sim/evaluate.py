"""Accuracy of the camera pipeline on the synthetic suite: incidents found vs ground truth.

Runs each scenario's frames through Perception(motion) and the RuleEngine and scores, per
incident type: precision, recall, false alarms per camera-hour and the mean detection
delay next to the rule's own threshold (the delay the rule adds by design), with a 95 %
Wilson interval for precision and recall.

`evaluate_seeds` runs a suite of presets on several seed offsets (`SEED_STRIDE` apart), in
worker processes when asked: the figures are pooled over every run, and `per_seed` keeps
each offset's own counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from multiprocessing import get_context
from typing import Any

from cityedge.edge.camera.detectors.motion import MotionDetector
from cityedge.edge.camera.perception import Perception
from cityedge.edge.camera.rules import RuleConfig, RuleEngine
from cityedge.edge.camera.tracker import Tracker, TrackerConfig
from cityedge.protocol.vision import INCIDENT_TYPES, Incident
from cityedge.sim.pilot.stats import wilson_interval
from cityedge.sim.scenarios import preset
from cityedge.sim.scene import GroundTruthIncident, Scenario, SceneRun, frames, scene_zones

__all__ = [
    "MATCH_SLACK_S",
    "SEED_STRIDE",
    "ScenarioResult",
    "default_jobs",
    "evaluate",
    "evaluate_seeds",
    "run_all",
    "run_scenario",
    "score",
    "seed_offsets",
    "wilson95",
]

MATCH_SLACK_S = 2.0  # a detection counts for a true incident from its start to its end + slack
SEED_STRIDE = 1000  # between the offsets of one multi-seed run: offsets have always been k * 1000


@dataclass
class ScenarioResult:
    scenario: Scenario
    truth: list[GroundTruthIncident]
    found: list[Incident]
    frames: int
    seconds: float
    elapsed_s: float
    matches: list[tuple[GroundTruthIncident, Incident]] = field(default_factory=list)


def run_scenario(scenario: Scenario, rules: RuleConfig | None = None) -> ScenarioResult:
    """Perception(motion) -> tracker -> rules over every frame of one scenario."""
    run = SceneRun(scenario, zones=scene_zones(scenario))
    perception = Perception(MotionDetector(), Tracker(TrackerConfig(fps=scenario.fps)))
    engine = RuleEngine(run.zones, rules)  # the engine fits pixel thresholds to the frame
    found: list[Incident] = []
    count = 0
    started = time.perf_counter()
    for index, t, image in frames(scenario, run):
        output = engine.step(perception.process(scenario.camera, index, image, t))
        found.extend(output.incidents)
        count += 1
    elapsed = time.perf_counter() - started
    result = ScenarioResult(scenario, run.incidents, found, count, scenario.seconds, elapsed)
    result.matches = _match(run.incidents, found)
    return result


def _match(
    truth: list[GroundTruthIncident], found: list[Incident]
) -> list[tuple[GroundTruthIncident, Incident]]:
    """Each true incident takes the earliest detection of its type and lane inside its span."""
    matches, used = [], set()
    for gt in sorted(truth, key=lambda g: g.start):
        for k, inc in sorted(enumerate(found), key=lambda p: p[1].detected_at):
            if k in used or inc.type != gt.type or inc.lane != gt.lane:
                continue
            if gt.start - MATCH_SLACK_S <= inc.detected_at <= gt.end + MATCH_SLACK_S:
                matches.append((gt, inc))
                used.add(k)
                break
    return matches


def _threshold(rules: RuleConfig, kind: str) -> float:
    return {
        "stopped_vehicle": rules.stopped_after_s,
        "wrong_way": rules.wrong_way_min_s,
        "congestion": rules.congestion_after_s,
    }[kind]


def score(results: Iterable[ScenarioResult], rules: RuleConfig | None = None) -> dict[str, Any]:
    """Per incident type over all results: precision, recall, false alarms/camera-hour, delay."""
    results = list(results)
    rules = rules or RuleConfig()
    hours = sum(r.seconds for r in results) / 3600.0
    return {
        "camera_hours": round(hours, 4),
        "frames": sum(r.frames for r in results),
        "elapsed_s": round(sum(r.elapsed_s for r in results), 2),
        "types": {
            kind: _score_type(results, kind, _threshold(rules, kind), hours) for kind in INCIDENT_TYPES
        },
        "scenarios": {r.scenario.name: _scenario_summary(r) for r in results},
    }


def _counts(results: list[ScenarioResult], kind: str) -> tuple[int, int, int]:
    """(ground truth, detections, true positives) of one incident type over `results`."""
    truth = sum(1 for r in results for g in r.truth if g.type == kind)
    found = sum(1 for r in results for i in r.found if i.type == kind)
    hits = sum(1 for r in results for g, _ in r.matches if g.type == kind)
    return truth, found, hits


def _score_type(results: list[ScenarioResult], kind: str, threshold: float, hours: float) -> dict[str, Any]:
    truth, found, hits = _counts(results, kind)
    delays = [i.detected_at - g.start for r in results for g, i in r.matches if g.type == kind]
    mean = sum(delays) / hits if hits else None
    return {
        "ground_truth": truth,
        "detected": found,
        "true_positives": hits,
        "false_positives": found - hits,
        "precision": _ratio(hits, found),
        "recall": _ratio(hits, truth),
        # not named precision/recall: a lower bound below 0.95 is no figure missing its target
        "ci95": {"prec": wilson95(hits, found), "rec": wilson95(hits, truth)},
        "false_alarms_per_camera_hour": round((found - hits) / hours, 2) if hours else None,
        "mean_delay_s": round(mean, 2) if mean is not None else None,
        "rule_threshold_s": threshold,
        "delay_over_threshold_s": round(mean - threshold, 2) if mean is not None else None,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def wilson95(successes: int, trials: int) -> list[float] | None:
    """The 95 % Wilson score interval [low, high] of successes/trials, rounded to 4 places;
    None when there are no trials. Unlike p +- 1.96 sd it stays inside [0, 1] and is not
    empty at 0 or n: 35 of 35 gives [0.9011, 1.0], 0 of 35 gives [0.0, 0.0989]."""
    if trials <= 0:
        return None
    low, high = wilson_interval(successes, trials)
    return [round(low, 4), round(high, 4)]


def _scenario_summary(r: ScenarioResult) -> dict[str, Any]:
    return {
        "seconds": r.seconds,
        "size": list(r.scenario.size),
        "fps": r.scenario.fps,
        "ground_truth": len(r.truth),
        "detected": len(r.found),
        "matched": len(r.matches),
        "ms_per_frame": round(1000 * r.elapsed_s / max(r.frames, 1), 2),
    }


def evaluate(scenarios: Iterable[Scenario], rules: RuleConfig | None = None) -> dict[str, Any]:
    """Run every scenario in this process and score them together."""
    results = [run_scenario(sc, rules) for sc in scenarios]
    return score(results, rules)


def seed_offsets(seed_offset: int, seeds: int) -> list[int]:
    """The offsets of a `seeds`-seed run: seed_offset, seed_offset + SEED_STRIDE, ..."""
    return [seed_offset + i * SEED_STRIDE for i in range(seeds)]


def default_jobs(runs: int) -> int:
    """One worker process per CPU, never more than there are scenario runs, at least one."""
    return max(1, min(os.cpu_count() or 1, runs))


def run_all(
    scenarios: Sequence[Scenario], rules: RuleConfig | None = None, jobs: int = 1
) -> list[ScenarioResult]:
    """`run_scenario` over every scenario, results in the scenarios' order: in this process
    when `jobs` is 1, else in `jobs` spawned worker processes (scenario, rules and results
    cross as pickles). A run is deterministic from its scenario, so both give equal results."""
    if jobs <= 1 or len(scenarios) <= 1:
        return [run_scenario(sc, rules) for sc in scenarios]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        return list(pool.map(run_scenario, scenarios, repeat(rules)))


def evaluate_seeds(
    names: Sequence[str],
    slots: int,
    size: tuple[int, int],
    seed_offset: int = 0,
    seeds: int = 1,
    jobs: int | None = None,
    rules: RuleConfig | None = None,
) -> dict[str, Any]:
    """The presets `names` on `seeds` seed offsets, scored as one pool (`score`), plus
    `seed_offsets`, `per_seed` (each offset's counts, `p`/`r` its precision/recall) and
    `wall_s`. With several seeds a scenario is keyed "name@offset"."""
    started = time.perf_counter()
    offsets = seed_offsets(seed_offset, seeds)
    runs = [(name, offset) for offset in offsets for name in names]
    scenarios = [preset(name, slots, size, seed_offset=offset) for name, offset in runs]
    results = run_all(scenarios, rules, jobs or default_jobs(len(scenarios)))
    report = score(results, rules)
    if seeds > 1:
        keys = [f"{name}@{offset}" for name, offset in runs]
        report["scenarios"] = {k: _scenario_summary(r) for k, r in zip(keys, results, strict=True)}
    report["seed_offsets"] = offsets
    report["per_seed"] = [
        _seed_summary(offset, [r for (_, o), r in zip(runs, results, strict=True) if o == offset])
        for offset in offsets
    ]
    report["wall_s"] = round(time.perf_counter() - started, 2)
    return report


def _seed_summary(offset: int, results: list[ScenarioResult]) -> dict[str, Any]:
    """One offset's counts per type; `p` and `r` are its precision and recall."""
    types = {}
    for kind in INCIDENT_TYPES:
        truth, found, hits = _counts(results, kind)
        types[kind] = {
            "ground_truth": truth,
            "true_positives": hits,
            "false_positives": found - hits,
            "p": _ratio(hits, found),
            "r": _ratio(hits, truth),
        }
    return {"seed_offset": offset, "types": types}
