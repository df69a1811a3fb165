"""cityedge's sensor client: readings kept on the sensor's disk until the node's agent
confirms them, resent otherwise (see docs/sensors.md for the protocol in other languages)."""

from cityedge.sensor.client import SensorClient, SensorSettings

__all__ = ["SensorClient", "SensorSettings"]
