"""Device registry: inventory import, bootstrap tokens, enrollment, renewal and revocation."""

from cityedge.cloud.registry.inventory import (
    COLUMNS,
    ImportPlan,
    InventoryError,
    parse_inventory,
    plan_import,
)
from cityedge.cloud.registry.service import EnrollmentRefused, Issued, Registry

__all__ = [
    "COLUMNS",
    "EnrollmentRefused",
    "ImportPlan",
    "InventoryError",
    "Issued",
    "Registry",
    "parse_inventory",
    "plan_import",
]
