"""The one MetaData every domain's tables register on, and column types shared by them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A point in time, stored as naive UTC on every engine, returned as aware UTC.

    Naive UTC keeps the same column type on DuckDB (without the ICU time-zone machinery),
    PostgreSQL and Spark, so one Ibis expression truncates months identically everywhere.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give cxm times with a time zone")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utc_timestamp(name: str, *, nullable: bool = True, **kwargs: Any) -> sa.Column[dt.datetime]:
    """A timestamp column; every time cxm stores is UTC."""
    return sa.Column(name, UTCDateTime(), nullable=nullable, **kwargs)
