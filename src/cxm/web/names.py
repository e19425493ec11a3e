"""Display names for pages: the names every table shares (``cxm.names``) plus the kinds that
live above the domains' command lines (themes, metrics), score bands, journey paths, roles and
job kinds, so pages show a person "Last mile" and "Relationship survey" instead of
``last_mile`` and ``relationship_nps``.

Keys stay where a person types them (filters, YAML, URLs); everywhere else a page asks
``names.touchpoint(key)`` and gets the name, or the key itself when no name is known.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.engine import Connection, Engine

from cxm import names as base
from cxm.names import humanize

__all__ = ["BANDS", "JOB_KINDS", "ROLES", "Names", "humanize", "job_kind", "names_for",
           "role_name"]  # fmt: skip


# What each kind of durable job does, as the status page names it.
JOB_KINDS = {
    "actions.email": "Case notification emails",
    "actions.sla": "Case SLA checks",
    "actions.webhook": "Case webhook deliveries",
    "insights.predict": "Churn risk scoring",
    "insights.train": "Churn model training",
    "surveys.invite": "Survey invitations",
    "surveys.send_email": "Survey invitation emails",
    "surveys.send_sms": "Survey invitation text messages",
    "surveys.read_bounces": "Reading bounced emails",
    "text.annotate": "Text analysis of comments",
    "text.discover": "Theme discovery",
}


# Roles as the people who hold them say them.
ROLES = {"admin": "Admin", "cx_lead": "CX lead", "manager": "Manager", "agent": "Agent",
         "viewer": "Viewer", "partner": "Partner"}  # fmt: skip


def role_name(key: str) -> str:
    """A role's name: ``cx_lead`` → "CX lead"."""
    return ROLES.get(key) or humanize(key)


def job_kind(kind: str) -> str:
    """A job kind's name: ``actions.sla`` → "Case SLA checks"; an unknown one as words."""
    return JOB_KINDS.get(kind) or humanize(kind.replace(".", " "))


# The feedback explorer's score bands (``cxm.feedback.service.BANDS``) and NPS categories.
BANDS = {"promoter": "Promoter", "passive": "Passive", "detractor": "Detractor",
         "low_csat": "Low CSAT (1-2)", "high_csat": "High CSAT (4-5)",
         "low_ces": "Low CES (1-3)"}  # fmt: skip


def _themes(conn: Connection) -> dict[str, str]:
    from cxm.text import taxonomy

    return {t.key: t.name for t in taxonomy.list_themes(conn)}


class Names(base.Names):
    """``cxm.names.Names`` with themes, metrics, score bands and journey paths."""

    readers: ClassVar[dict[str, base.Reader]] = {**base.Names.readers, "theme": _themes}

    def theme(self, key: str | None, empty: str = "—") -> str:
        if not key:
            return empty
        return self._map("theme").get(key) or humanize(key)

    def metric(self, key: str) -> str:
        """A metric as a person reads it: ``nps`` → "NPS", ``csat_mean`` → "CSAT mean"."""
        from cxm.actions.titles import metric_label

        return metric_label(key)

    def band(self, key: str | None, empty: str = "—") -> str:
        """A score band or NPS category: ``detractor`` → "Detractor", ``low_csat`` → "Low CSAT
        (1-2)"."""
        if not key:
            return empty
        return BANDS.get(key) or humanize(key)

    def path(self, variant: str | None, empty: str = "—") -> str:
        """A journey path with each step named: a step that is a touchpoint key reads as the
        touchpoint's name, an event name as words (``order_placed → order_delivered`` →
        "Order placed → Order delivered")."""
        from cxm.journeys.mining import SEP

        if not variant:
            return empty
        touchpoints = self._map("touchpoint")
        return SEP.join(touchpoints.get(s) or humanize(s) for s in variant.split(SEP))


def names_for(source: Connection | Engine, scope: Any) -> Names:
    """Names for a caller with ``scope`` (customer names only where it sees personal data)."""
    return Names(source, personal=bool(getattr(scope, "personal_data", False)))
