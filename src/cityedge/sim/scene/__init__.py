"""Synthetic traffic scene with ground truth: a four-lane arterial seen from a camera mast.

Vehicles of several sizes and colours follow each other (a simple car-following model) at
urban speeds; the scene adds camera noise, lighting changes, shadows, partial occlusion
(a lamp post, a sign, a tree, nearer vehicles) and injected incidents: stopped vehicles,
wrong-way vehicles and congestion. Everything is deterministic from the scenario's seed. It
feeds frames, writes H.264 video (PyAV's wheel ships libx264), and returns the ground truth
and the lane zones that match what it draws.
"""

from cityedge.sim.scene.model import GroundTruthIncident, Injected, Scenario, SceneRun
from cityedge.sim.scene.run import frames, render, scene_zones, write_ground_truth, write_video

__all__ = [
    "GroundTruthIncident",
    "Injected",
    "Scenario",
    "SceneRun",
    "frames",
    "render",
    "scene_zones",
    "write_ground_truth",
    "write_video",
]
