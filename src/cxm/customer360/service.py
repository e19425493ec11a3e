"""The 360 profile and timeline (interactions and survey responses), privacy export and erase.

Reads span the interaction log and survey responses, so this sits above both domains; a
merged customer's facts are gathered across every profile merged into it.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.customers import service as customers
from cxm.customers.facts import (
    customer_identities,
    customer_merges,
    customer_traits,
    privacy_requests,
)
from cxm.customers.facts import customers as customers_table
from cxm.errors import Invalid, NotFound
from cxm.interactions.facts import interactions
from cxm.org.facts import touchpoints
from cxm.store import as_utc, utcnow
from cxm.surveys.facts import response_answers
from cxm.surveys.facts import responses_table as responses

PERSONAL = ("user_id", "anonymous_id", "email", "phone", "external_ids", "properties", "context")


def lookup(conn: Connection, identifier: str) -> str:
    """The current customer id for an identifier or id, or a NotFound that says what to try."""
    found = customers.find(conn, identifier)
    if found is None:
        raise NotFound(
            f"no customer for '{identifier}': give a customer id, an email, a phone number, "
            "or kind:value (e.g. crm_id:C123)"
        )
    return found


def _their_log(customer_ids: list[str], *columns: Any) -> Any:
    """These customers' rows of the log, read first by the customer_id index, as a CTE.

    DuckDB scans an index only for a filter on its column alone; asked in one query with a
    join or an order, its planner reads the whole log instead.
    """
    return (
        sa.select(*(columns or (interactions,)))
        .where(interactions.c.customer_id.in_(customer_ids))
        .cte("mine")
        .prefix_with("MATERIALIZED")
    )


def _touches(conn: Connection, customer_ids: list[str]) -> list[tuple[str | None, str | None, int]]:
    """(touchpoint, owning department, interactions) for these customers' log."""
    mine = _their_log(customer_ids, interactions.c.touchpoint_key)
    query = (
        sa.select(mine.c.touchpoint_key, touchpoints.c.department_key, sa.func.count())
        .select_from(mine.outerjoin(touchpoints, mine.c.touchpoint_key == touchpoints.c.key))
        .group_by(mine.c.touchpoint_key, touchpoints.c.department_key)
    )
    return [(r[0], r[1], int(r[2])) for r in conn.execute(query)]


def profile(conn: Connection, customer_id: str) -> dict[str, Any]:
    """Profile, identifiers, traits (with when each was set), facts, merges, counts."""
    row = customers.get(conn, customer_id)
    if row is None:
        raise NotFound(f"customer '{customer_id}' does not exist")
    if row["merged_into"]:
        return profile(conn, row["merged_into"])
    ids = customers.merged_ids(conn, customer_id)
    times = customers.trait_times(conn, customer_id)
    touches = _touches(conn, ids)
    by_department: dict[str, int] = {}
    for _, department, n in touches:
        # Interactions per owning department, "unowned" for touchpoints nobody owns yet.
        key = department or "unowned"
        by_department[key] = by_department.get(key, 0) + n
    response_count = conn.execute(
        sa.select(sa.func.count()).where(responses.c.customer_id.in_(ids))
    ).scalar_one()
    return {
        "id": customer_id,
        "created_at": row["created_at"],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "interaction_count": row["interaction_count"],
        "response_count": response_count,
        "erased_at": row["erased_at"],
        "identifiers": customers.identifiers(conn, customer_id),
        "traits": {
            k: {"value": v, "set_at": times.get(k)}
            for k, v in customers.traits(conn, customer_id).items()
        },
        "touchpoints": sorted(t for t, _, _ in touches if t is not None),
        "departments": sorted(d for d in by_department if d != "unowned"),
        "counts_by_department": dict(sorted(by_department.items())),
        "merged_from": ids[1:],
        "merges": customers.merges(conn, customer_id),
    }


def _encode(at: dt.datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode()


def _decode(cursor: str) -> tuple[dt.datetime, str]:
    try:
        at, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return dt.datetime.fromisoformat(at), key
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor: not a cursor this API returned; start again without one") from None


def _after(time_col: Any, id_col: Any, prefix: str, cursor: tuple[dt.datetime, str] | None) -> Any:
    """Rows strictly after the cursor in (time desc, key desc) order."""
    if cursor is None:
        return sa.true()
    at, key = cursor
    kp, _, kid = key.partition(":")
    if kp > prefix:
        return time_col <= at
    if kp < prefix:
        return time_col < at
    return sa.or_(time_col < at, sa.and_(time_col == at, id_col < kid))


def timeline(
    conn: Connection, customer_id: str, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """Interactions and survey responses, newest first, ``limit`` at a time."""
    if not 1 <= limit <= 500:
        raise Invalid("limit: give a number from 1 to 500")
    customer_id = customers.current_id(conn, customer_id)
    if customers.get(conn, customer_id) is None:
        raise NotFound(f"customer '{customer_id}' does not exist")
    ids = customers.merged_ids(conn, customer_id)
    pos = _decode(cursor) if cursor else None
    items: list[tuple[dt.datetime, str, dict[str, Any]]] = []
    mine = _their_log(ids)
    ix = conn.execute(
        sa.select(mine)
        .where(_after(mine.c.event_time, mine.c.event_id, "i", pos))
        .order_by(mine.c.event_time.desc(), mine.c.event_id.desc())
        .limit(limit + 1)
    ).mappings()
    for r in ix:
        at = as_utc(r["event_time"])
        assert at is not None
        items.append((at, f"i:{r['event_id']}", {"kind": "interaction", "at": at, **dict(r)}))
    when = sa.func.coalesce(responses.c.submitted_at, responses.c.started_at)
    rs = conn.execute(
        sa.select(responses, when.label("at"))
        .where(responses.c.customer_id.in_(ids))
        .where(_after(when, responses.c.id, "r", pos))
        .order_by(when.desc(), responses.c.id.desc())
        .limit(limit + 1)
    ).mappings()
    for r in rs:
        at = as_utc(r["at"])
        assert at is not None
        items.append((at, f"r:{r['id']}", {**dict(r), "kind": "response", "at": at}))
    items.sort(key=lambda t: (t[0], t[1]), reverse=True)
    page = items[:limit]
    more = len(items) > limit
    return {
        "customer_id": customer_id,
        "items": [i for _, _, i in page],
        "next_cursor": _encode(page[-1][0], page[-1][1]) if more and page else None,
    }


# ---- privacy ----


def record_request(
    conn: Connection, kind: str, customer_id: str, by: str, counts: dict[str, int]
) -> None:
    conn.execute(
        privacy_requests.insert().values(
            id=secrets.token_hex(16),
            kind=kind,
            customer_id=customer_id,
            requested_by=by,
            counts=counts,
            requested_at=utcnow(),
        )
    )


def export(conn: Connection, identifier: str, requested_by: str) -> dict[str, Any]:
    """Everything held on one person, as JSON-ready data; the request is recorded."""
    customer_id = lookup(conn, identifier)
    ids = customers.merged_ids(conn, customer_id)

    def rows(query: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(query).mappings()]

    response_rows = rows(sa.select(responses).where(responses.c.customer_id.in_(ids)))
    data = {
        "customer_id": customer_id,
        "exported_at": utcnow(),
        "profiles": rows(sa.select(customers_table).where(customers_table.c.id.in_(ids))),
        "identifiers": rows(
            sa.select(customer_identities).where(customer_identities.c.customer_id.in_(ids))
        ),
        "traits": rows(sa.select(customer_traits).where(customer_traits.c.customer_id.in_(ids))),
        "merges": rows(
            sa.select(customer_merges).where(customer_merges.c.into_customer_id.in_(ids))
        ),
        "interactions": rows(
            sa.select(interactions)
            .where(interactions.c.customer_id.in_(ids))
            .order_by(interactions.c.event_time)
        ),
        "responses": response_rows,
        "response_answers": rows(
            sa.select(response_answers).where(
                response_answers.c.response_id.in_([r["id"] for r in response_rows])
            )
        ),
    }
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    record_request(conn, "export", customer_id, requested_by, counts)
    return data


def response_ids(conn: Connection, customer_ids: list[str]) -> list[str]:
    """The survey responses of these customer ids."""
    query = sa.select(responses.c.id).where(responses.c.customer_id.in_(customer_ids))
    return list(conn.execute(query).scalars())


def erase(
    conn: Connection, identifier: str, requested_by: str, *, record: bool = True
) -> dict[str, int]:
    """Erase one person: identifiers, traits and personal fields go; facts stay, anonymised.

    Interactions and responses keep their times, names, touchpoints, scores and revenue (so
    every aggregate stays right) under the now anonymous customer id; the profile keeps only
    ``erased_at``. Later events with the same identifiers start a new profile.
    """
    customer_id = lookup(conn, identifier)
    ids = customers.merged_ids(conn, customer_id)
    mine = interactions.c.customer_id.in_(ids)
    counts: dict[str, int] = {}
    # Links written by resolve() are not interactions, and their ids derive from identifiers.
    counts["links_deleted"] = len(
        conn.execute(
            interactions.delete()
            .where(mine, interactions.c.source == "resolve")
            .returning(interactions.c.event_id)
        ).all()
    )
    counts["interactions_anonymised"] = len(
        conn.execute(
            interactions.update()
            .where(mine)
            .values({c: None for c in PERSONAL})
            .returning(interactions.c.event_id)
        ).all()
    )
    answered = response_ids(conn, ids)
    if answered:
        conn.execute(responses.update().where(responses.c.id.in_(answered)).values(comment=None))
        conn.execute(
            response_answers.update()
            .where(response_answers.c.response_id.in_(answered))
            .values(value_text=None, value_list=None)
        )
    counts["responses_anonymised"] = len(answered)
    for name, table, col in (
        ("identifiers_deleted", customer_identities, customer_identities.c.customer_id),
        ("traits_deleted", customer_traits, customer_traits.c.customer_id),
        ("merges_deleted", customer_merges, customer_merges.c.into_customer_id),
    ):
        counts[name] = len(conn.execute(table.delete().where(col.in_(ids)).returning(col)).all())
    conn.execute(
        customers_table.update().where(customers_table.c.id.in_(ids)).values(erased_at=utcnow())
    )
    if record:
        record_request(conn, "erase", customer_id, requested_by, counts)
    return counts


def requests(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The privacy request log, newest first."""
    rows = conn.execute(
        sa.select(privacy_requests).order_by(privacy_requests.c.requested_at.desc()).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]
