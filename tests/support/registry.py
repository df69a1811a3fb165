"""Shared values for the registry tests: a fixed clock and the guide's inventory example."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GUIDE_CSV = (
    "device_id,serial,model,ip,mac,sim\nedge-node-001,SN12345,NX-500,10.0.10.21,aa:bb:cc:dd:ee:ff,SIM-001\n"
)
