"""Device registry: inventory import, bootstrap tokens, enrollment, renewal and revocation."""

from cityedge.cloud.registry.inventory import (
    COLUMNS,
    ImportPlan,
    InventoryRow,
    decode_inventory,
    parse_inventory,
    plan_import,
)
from cityedge.cloud.registry.service import Issued, Registry
from cityedge.protocol.errors import EnrollmentRefused, InventoryError

__all__ = [
    "COLUMNS",
    "EnrollmentRefused",
    "ImportPlan",
    "InventoryError",
    "InventoryRow",
    "Issued",
    "Registry",
    "decode_inventory",
    "parse_inventory",
    "plan_import",
]
