"""Incident rules for one camera: stopped vehicle, wrong way, congestion, and lane counts.

Pure: the engine takes the tracks of one frame (with its capture time) and returns what
happened; no clock, no I/O, no image code. One module per rule; `engine` composes them.
"""

from cityedge.edge.camera.rules.config import RuleConfig
from cityedge.edge.camera.rules.engine import RuleEngine, RuleOutput

__all__ = ["RuleConfig", "RuleEngine", "RuleOutput"]
