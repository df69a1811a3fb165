"""Ingest as a process: its config (file, database override, fault switch), its store and its
consumer, started and stopped in order. The CLI only reads the environment and the signals."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from cityedge.cloud.ingest.config import IngestConfig
from cityedge.cloud.ingest.consumer import IngestConsumer
from cityedge.cloud.store import RecordStore
from cityedge.configfile import load_config, parse_config

__all__ = ["load_ingest_config", "serve_ingest"]


def load_ingest_config(path: Path, database: str | None = None, fault: str | None = None) -> IngestConfig:
    """The config file, with `--db` and the test-only fault switch laid over it."""
    cfg = load_config(IngestConfig, path)
    overrides: dict[str, Any] = {}
    if database is not None:
        overrides["database"] = database
    if fault:
        overrides["fault"] = fault
    if not overrides:
        return cfg
    return parse_config(IngestConfig, {**cfg.model_dump(), **overrides}, f"{path} (+ {', '.join(overrides)})")


def serve_ingest(cfg: IngestConfig, done: threading.Event, say: Callable[[str], None]) -> None:
    """Run until `done` is set; say where it consumes from and stores to, and what it did."""
    store = RecordStore.open(cfg.database)
    consumer = IngestConsumer(cfg, store, registry=REGISTRY)
    try:
        consumer.start()
        metrics = f"; metrics on :{consumer.metrics_port}" if consumer.metrics_port else ""
        say(f"ingest: {cfg.client_id} consumes {cfg.host}:{cfg.port} into {store.url}{metrics}")
        done.wait()
    finally:
        consumer.stop()
        store.close()
    s = consumer.stats()
    say(
        f"ingest: stopped; stored {s.records} records, {s.duplicates} duplicates ignored, "
        f"{sum(s.rejected.values())} quarantined, {s.store_acks} store acknowledgements sent"
    )
