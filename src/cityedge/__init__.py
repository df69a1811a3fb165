"""cityedge: an edge computing stack for smart-city districts.

Nodes decide locally, keep raw data on the node and send only metadata, through a
durable outbox, to a cloud control plane that owns identity, releases and fleet health.
"""

__version__ = "0.1.0"
