"""Cloud ingest: pure decode (`decode`) and the MQTT consumer that acks only after commit.

The consumer and its config are imported lazily so that `decode` (which the store uses for
its record type) stays free of paho and prometheus imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cityedge.cloud.ingest.decode import IngestRecord, decode_message, rejection_reason

if TYPE_CHECKING:
    from cityedge.cloud.ingest.config import IngestConfig, TlsFiles
    from cityedge.cloud.ingest.consumer import IngestConsumer, IngestStats, IngestStore

__all__ = [
    "IngestConfig",
    "IngestConsumer",
    "IngestRecord",
    "IngestStats",
    "IngestStore",
    "TlsFiles",
    "decode_message",
    "rejection_reason",
]

_LAZY = {
    "IngestConfig": "cityedge.cloud.ingest.config",
    "TlsFiles": "cityedge.cloud.ingest.config",
    "IngestConsumer": "cityedge.cloud.ingest.consumer",
    "IngestStats": "cityedge.cloud.ingest.consumer",
    "IngestStore": "cityedge.cloud.ingest.consumer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
