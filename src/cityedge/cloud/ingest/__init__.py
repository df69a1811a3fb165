"""Cloud ingest: the pure decode (`decode`), the worker that stores and quarantines, and the
MQTT consumer that acknowledges to nodes and to the broker only after the commit."""

from cityedge.cloud.ingest.config import IngestConfig
from cityedge.cloud.ingest.consumer import IngestConsumer, IngestStats
from cityedge.cloud.ingest.decode import Decoded, RefusedRecord, decode_message, rejection_reason
from cityedge.cloud.ingest.worker import IngestStore

__all__ = [
    "Decoded",
    "IngestConfig",
    "IngestConsumer",
    "IngestStats",
    "IngestStore",
    "RefusedRecord",
    "decode_message",
    "rejection_reason",
]
