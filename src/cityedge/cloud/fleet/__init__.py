"""Fleet health: node status from heartbeats and last wills (`status.py`, a pure table), the
alert rules (`alerts.py`, pure), the monitor that applies them to what ingest stored
(`monitor.py`, imported directly: it needs the store), their Prometheus metrics and the cloud
side of `cityedge doctor`."""

from cityedge.cloud.fleet.alerts import ALERTS, Alert, evaluate
from cityedge.cloud.fleet.config import AlertThresholds, FleetSection
from cityedge.cloud.fleet.status import FleetState, NodeHealth, Status, Transition

__all__ = [
    "ALERTS",
    "Alert",
    "AlertThresholds",
    "FleetSection",
    "FleetState",
    "NodeHealth",
    "Status",
    "Transition",
    "evaluate",
]
