"""The cloud store: the only package that touches the database (SQLAlchemy Core + Alembic).

SQLite by default, PostgreSQL (psycopg 3) for real deployments; the same schema and tests
run on both. `RecordStore.open(url)` migrates to the newest schema before it returns.
"""

from cityedge.cloud.store.engine import make_engine, parse_url, safe_url
from cityedge.cloud.store.migrate import current_revision, head_revision, upgrade
from cityedge.cloud.store.records import RecordStore, StoreRejectedError, StoreUnavailableError
from cityedge.cloud.store.rows import (
    IngestRecord,
    InsertResult,
    QuarantinedItem,
    StoredQuarantine,
    StoredRecord,
)

__all__ = [
    "IngestRecord",
    "InsertResult",
    "QuarantinedItem",
    "RecordStore",
    "StoreRejectedError",
    "StoreUnavailableError",
    "StoredQuarantine",
    "StoredRecord",
    "current_revision",
    "head_revision",
    "make_engine",
    "parse_url",
    "safe_url",
    "upgrade",
]
