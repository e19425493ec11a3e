"""What each principal may read, one helper per fact, applied by the queries (never a page).

admin and cx_lead see everything; a manager sees their department's touchpoints, the
responses and comments given there and the customers who touched them; an agent sees their
team's cases and the customers in them, and their department's comments; a viewer sees
aggregates only, with personal data masked and small slices suppressed. A partner user (a
courier's, a reseller's) sees aggregates of the touchpoints their partner runs and nothing
else: every other route answers as if it did not exist (``partner_may_reach``).

The API, the pages and the CLI all ask these helpers (Polar's ``get_readable_statement`` is
the model), so a rule changes in one place. What is outside a scope reads as absent (404).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.errors import Forbidden, NotFound
from cxm.org.auth import Principal
from cxm.org.tables import teams, touchpoints, users

MASK = "•••"
# Traits that are always personal data; settings may name more (CXM_PERSONAL_TRAITS).
PERSONAL_TRAITS = ("name", "email", "phone", "address")
# Interaction properties naming the employee who handled it (``cxm.employees.frontline``):
# partner users may not slice by them (one row per agent would be individual figures).
EMPLOYEE_PROPERTIES = ("agent_id",)
# A customer's answer to "does this team have a case about these customers?"; cases live in
# a domain above this one, so callers hand it in.
TeamReach = Callable[[Connection, str | None, Sequence[str]], bool]


@dataclass(frozen=True)
class Scope:
    role: str
    department_key: str | None = None
    team_key: str | None = None
    partner_key: str | None = None

    @property
    def everything(self) -> bool:
        return self.role in ("admin", "cx_lead")

    @property
    def by_department(self) -> bool:
        return self.role == "manager"

    @property
    def by_team(self) -> bool:
        return self.role == "agent"

    @property
    def by_partner(self) -> bool:
        return self.role == "partner"

    @property
    def personal_data(self) -> bool:
        """Whether names, emails, phones and free text may be shown (within the scope)."""
        return self.role not in ("viewer", "partner")


def scope_for(who: Principal) -> Scope:
    return Scope(
        role=who.role, department_key=who.department_key, team_key=who.team_key,
        partner_key=who.partner_key,
    )  # fmt: skip


def mask(value: str | None, scope: Scope) -> str | None:
    """Personal data for scopes that may see it, a mask for the rest."""
    if value is None or scope.personal_data:
        return value
    return MASK


# ---- touchpoints (what responses, interactions and comments are owned through) ----


def visible_touchpoints(conn: Connection, scope: Scope) -> set[str] | None:
    """The touchpoints whose responses and interactions the scope reads; None: all of them.

    Managers read their department's; partner users the touchpoints their partner runs;
    everyone else reads every response (viewers in aggregate only: their free text and
    identities are masked by ``mask``).
    """
    if scope.by_partner:
        rows = conn.execute(
            sa.select(touchpoints.c.key).where(touchpoints.c.partner_key == scope.partner_key)
        )
        return set(rows.scalars())
    if not scope.by_department:
        return None
    rows = conn.execute(
        sa.select(touchpoints.c.key).where(touchpoints.c.department_key == scope.department_key)
    )
    return set(rows.scalars())


def _department_of(conn: Connection, scope: Scope) -> str | None:
    if scope.department_key or scope.team_key is None:
        return scope.department_key
    found = conn.execute(
        sa.select(teams.c.department_key).where(teams.c.key == scope.team_key)
    ).scalar()
    return str(found) if found is not None else None


# ---- responses and comments ----


def readable_comment_touchpoints(conn: Connection, scope: Scope) -> frozenset[str] | None:
    """Touchpoints whose comments (free text, quoted verbatim) the scope may read.

    None: every touchpoint (admin, cx_lead). An empty set: none at all (viewers, and agents
    or managers without a department). Managers and agents: their department's touchpoints.
    """
    if scope.everything:
        return None
    if not scope.personal_data:
        return frozenset()
    department = _department_of(conn, scope)
    if department is None:
        return frozenset()
    rows = conn.execute(
        sa.select(touchpoints.c.key).where(touchpoints.c.department_key == department)
    )
    return frozenset(rows.scalars())


# ---- customers ----


def customer_not_found() -> NotFound:
    """The one answer for an unknown customer and for one outside the caller's scope.

    It does not echo the identifier, so the answer is the same whatever was asked.
    """
    return NotFound(
        "no customer matches that identifier: give a customer id, an email, a phone number, "
        "or kind:value (e.g. crm_id:C123)"
    )


def may_read_customer(
    conn: Connection, scope: Scope, profile: dict[str, Any], team_reach: TeamReach | None
) -> bool:
    """Whether the scope reads this customer (a 360 profile with ``touchpoints``).

    Viewers read no customer; a manager reads those who touched their department's
    touchpoints; an agent those in their team's cases (asked through ``team_reach``).
    """
    if not scope.personal_data:
        return False
    if scope.by_team:
        ids = [profile["id"], *profile.get("merged_from", [])]
        return team_reach is not None and team_reach(conn, scope.team_key, ids)
    visible = visible_touchpoints(conn, scope)
    return visible is None or bool(visible & set(profile.get("touchpoints", [])))


def readable_customer(
    conn: Connection,
    scope: Scope,
    profile: dict[str, Any],
    team_reach: TeamReach | None,
) -> dict[str, Any]:
    """The profile if the scope reads it; else the same NotFound as for an unknown one."""
    if not may_read_customer(conn, scope, profile, team_reach):
        raise customer_not_found()
    return profile


def may_see_customer_ids(who: Principal) -> bool:
    """Ingest (write-only) keys learn nothing about stored customers, not even their ids."""
    return who.allows("read") and scope_for(who).everything


# ---- metric slices ----


def personal_traits(extra: Iterable[str] = ()) -> frozenset[str]:
    return frozenset(PERSONAL_TRAITS) | {t.strip().lower() for t in extra if t.strip()}


def check_slice_dimensions(
    scope: Scope, dimensions: Iterable[str], extra_personal: Iterable[str] = ()
) -> None:
    """Refuse personal traits (``trait:email``...) as a slice or filter for restricted roles.

    Only admin and cx_lead, who read every customer, may slice by a personal trait; for
    anyone else one row per person would be a list of names. Partner users may not slice or
    filter by the employee who handled an interaction (``trigger:agent_id``) either: their
    view holds no figure of the company's agents. Raises Forbidden (403).
    """
    if scope.everything:
        return
    personal = personal_traits(extra_personal)
    for d in dimensions:
        if scope.by_partner and d.startswith("trigger:"):
            prop = d[len("trigger:") :].strip().lower()
            if prop in EMPLOYEE_PROPERTIES:
                raise Forbidden(
                    f"'{d}' names the company's employees; a partner user reads their "
                    "partner's touchpoints in aggregate, never by the people who handled them"
                )
        if d.startswith("trait:") and d[len("trait:") :].strip().lower() in personal:
            raise Forbidden(
                f"'{d}' is personal data; role '{scope.role}' may slice by it only through "
                "an admin or cx_lead; use segment, region or an org dimension instead"
            )


def suppress_small_slices(
    scope: Scope, rows: list[dict[str, Any]], sliced: bool, k: int
) -> tuple[list[dict[str, Any]], int]:
    """Drop slices with fewer than ``k`` answers for roles that do not read every customer.

    Returns the rows kept and how many were suppressed. The overall row (no slice) stays:
    it describes no small group.
    """
    if scope.everything or not sliced:
        return rows, 0
    kept = [r for r in rows if (r.get("n") or 0) >= k]
    return kept, len(rows) - len(kept)


# ---- partner users ----

# What a partner user may reach, as (method, path pattern); everything else reads as absent.
# ``{partner}`` stands for the user's own partner key, ``{any}`` for one path segment.
PARTNER_ROUTES = (
    ("GET", "/api/v1/metrics"),
    ("GET", "/api/v1/partners"),
    ("GET", "/api/v1/metrics/{any}"),
    ("GET", "/api/v1/partners/{partner}"),
    ("GET", "/api/v1/partners/{partner}/scorecard"),
    ("GET", "/partners/{partner}"),
    ("POST", "/logout"),
    ("GET", "/logout"),
)
# Metric routes that are not one metric's aggregates (alerts name slices outside the partner).
PARTNER_REFUSED = ("/api/v1/metrics/alerts", "/api/v1/metrics/targets")


def partner_may_reach(scope: Scope, method: str, path: str) -> bool:
    """Whether a principal may call ``method path`` at all; only partner users are limited.

    A partner user reaches the metric API (narrowed in its queries to their partner's
    touchpoints), their own partner's record and scorecard, and signing out: an allow-list,
    so a route added later stays closed to them until it is listed here.
    """
    if not scope.by_partner:
        return True
    if scope.partner_key is None or path in PARTNER_REFUSED:
        return False
    method = "GET" if method == "HEAD" else method
    parts = path.rstrip("/").split("/")
    for allowed_method, pattern in PARTNER_ROUTES:
        expected = pattern.split("/")
        if allowed_method != method or len(expected) != len(parts):
            continue
        if all(
            e == p or e == "{any}" or (e == "{partner}" and p == scope.partner_key)
            for e, p in zip(expected, parts, strict=True)
        ):
            return True
    return False


def readable_partners(conn: Connection, scope: Scope) -> frozenset[str] | None:
    """Keys of the partners whose record and scorecard the scope reads; None: every one.

    A partner user reads their own partner only; admin, cx_lead and viewers (aggregates)
    read every partner; a manager reads the partners running a touchpoint of their
    department; anyone else none.
    """
    if scope.by_partner:
        return frozenset([scope.partner_key] if scope.partner_key else [])
    if scope.role in ("admin", "cx_lead", "viewer"):
        return None
    if not scope.department_key:
        return frozenset()
    rows = conn.execute(
        sa.select(touchpoints.c.partner_key)
        .where(
            touchpoints.c.department_key == scope.department_key,
            touchpoints.c.partner_key.is_not(None),
        )
        .distinct()
    )
    return frozenset(rows.scalars())


def partner_filters(scope: Scope, filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """Metric filters narrowed to the partner user's partner (others' filters unchanged).

    A partner user who filters by another partner gets NotFound, as for an unknown one.
    """
    if not scope.by_partner:
        return filters
    asked = filters.get("partner")
    if asked is not None and set(asked) - {scope.partner_key}:
        raise NotFound("no such partner in your scope; you read your own partner's touchpoints")
    return filters | {"partner": [str(scope.partner_key)]}


# ---- initiatives ----


def readable_departments(conn: Connection, scope: Scope) -> frozenset[str] | None:
    """Departments whose insights (what their signals cost, their drivers) the scope reads.

    None: every department (admin, cx_lead, and viewers, who see aggregates only). A manager,
    and an agent, read their own department's; a principal without one (a partner user)
    reads none.
    """
    if scope.by_partner:
        return frozenset()
    if scope.everything or scope.role == "viewer":
        return None
    department = _department_of(conn, scope)
    return frozenset([department] if department else [])


def may_read_initiatives(scope: Scope) -> bool:  # partner users: never
    """Initiatives (company plans with owners and budgets) are for those who run them."""
    return scope.role in ("admin", "cx_lead", "manager")


# ---- staff (assignees) ----


def readable_user_id(conn: Connection, scope: Scope, who: str) -> str | None:
    """The id of the user named by email or id, if the scope may see that user, else None.

    admin and cx_lead see every user; a manager their department's; an agent their team's;
    a viewer none (their case lists mask assignees). Unknown and out-of-scope read alike, so
    a filter cannot be used to learn which emails are staff.
    """
    if not scope.personal_data:
        return None
    query = sa.select(users.c.id).where(sa.or_(users.c.id == who, users.c.email == who.lower()))
    if scope.by_team:
        query = query.where(users.c.team_key == scope.team_key)
    elif scope.by_department:
        query = query.where(users.c.department_key == scope.department_key)
    found = conn.execute(query).scalar()
    return str(found) if found is not None else None


def assignable_user_id(conn: Connection, scope: Scope, who: str) -> str:
    """The user a scope may assign cases to (same rule as ``readable_user_id``), else 404."""
    found = readable_user_id(conn, scope, who.strip())
    if found is None:
        raise NotFound(
            f"user '{who}' does not exist in your scope; give the email of a user of your "
            "department (see 'cxm users list')"
        )
    return found
