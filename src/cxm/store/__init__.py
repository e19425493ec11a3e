"""The store: engine from ``CXM_DATABASE_URL``, the shared table metadata, migrations, jobs."""

from cxm.store.analytics import analytics
from cxm.store.base import UTCDateTime, metadata, utc_timestamp
from cxm.store.engine import as_utc, create_engine, insert_ignore, is_duckdb, utcnow
from cxm.store.migrate import current_revision, head_revision, upgrade

__all__ = [
    "UTCDateTime",
    "analytics",
    "as_utc",
    "create_engine",
    "current_revision",
    "head_revision",
    "insert_ignore",
    "is_duckdb",
    "metadata",
    "upgrade",
    "utc_timestamp",
    "utcnow",
]
