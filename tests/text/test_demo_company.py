"""Text analytics on the demo company: the frictions it plants come back as themes and impact.

The generator writes comments that follow the frictions each customer met (``docs/demo.md``);
its ``customers.csv`` says who met which, the ground truth these tests check against.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from cxm.demo.generator import generate
from cxm.text import analytics, taxonomy
from cxm.text import jobs as text_jobs
from cxm.text.themes import discover
from cxm.yamldoc import parse
from tests.text import corpus

FRICTIONS = ("late_delivery", "billing_error", "repeat_contact")
# The words the demo's comments use for each friction (docs/demo.md).
VOCABULARY = {
    "late_delivery": {"late", "delay", "days", "waited", "delivery"},
    "billing_error": {"invoice", "bill", "billing", "charged", "refund", "overcharged"},
    "repeat_contact": {"called", "call", "again", "third", "fixed", "nobody", "contact",
                       "second", "transferred"},
}  # fmt: skip


# What a company would write for these frictions: the starter taxonomy's broader themes
# ("delivery" also catches "quick delivery") would mix praise into them.
FRICTION_TAXONOMY = """
taxonomy: frictions
themes:
  - key: late_delivery
    name: Late delivery
    keywords: [late, delay*, "days after"]
  - key: billing_error
    name: Billing error
    keywords: [invoice*, "charged twice", overcharged, refund*, bill, billing]
  - key: repeat_contact
    name: Repeat contact
    keywords: ["called again", "third time", "second time", "nobody fixed", transferred]
"""


def _company(out: Path, customers: int) -> list[dict[str, Any]]:
    """A demo company's commented responses, each with the frictions its customer met."""
    generate(out, customers=customers, months=6, seed=7)
    people = list(csv.DictReader((out / "customers.csv").open(encoding="utf-8")))
    by_crm = {c["crm_id"]: c for c in people}
    by_email = {c["email"].strip().lower(): c for c in people}
    rows = []
    for r in csv.DictReader((out / "responses.csv").open(encoding="utf-8")):
        if not r["comment"]:
            continue
        # 15% answered without the personal link: the email (case and spaces vary) says who
        customer = by_crm.get(r["crm_id"]) or by_email[r["email"].strip().lower()]
        r["met"] = {f for f in FRICTIONS if int(customer[f]) > 0}
        rows.append(r)
    return rows


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """About 400 comments: enough to cluster, few enough to embed in seconds."""
    return _company(tmp_path_factory.mktemp("demo"), 1000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """About 800 commented NPS answers: enough for the sign of each friction's NPS impact."""
    return _company(tmp_path_factory.mktemp("demo"), 8000)


def _share(members: list[dict[str, Any]], friction: str) -> float:
    return sum(friction in r["met"] for r in members) / len(members)


def test_discovered_themes_separate_the_planted_frictions(
    small_demo: list[dict[str, Any]],
) -> None:
    rows = small_demo
    found = discover([r["comment"] for r in rows], seed=0, vectors="embedding")
    themes = [t for t in found.themes if t.size >= 10]
    best = {}
    for friction in FRICTIONS:
        base = _share(rows, friction)
        theme = max(themes, key=lambda t: _share([rows[i] for i in t.members], friction))
        share = _share([rows[i] for i in theme.members], friction)
        # the theme is about the friction: mostly customers who met it, far above the base
        # rate, and labelled with the friction's own words
        assert share >= max(0.45, 1.8 * base), (friction, share, base, theme.keywords)
        words = {w for k in theme.keywords for w in k.split()}
        assert words & VOCABULARY[friction], (friction, theme.keywords)
        best[friction] = theme.id
    assert len(set(best.values())) == 3, best  # three frictions, three themes


@pytest.fixture
def demo_store(seeded: Engine, demo: list[dict[str, Any]]) -> Iterator[Engine]:
    """The store holding the demo's commented NPS answers, annotated and tagged by friction."""
    rows = []
    for r in demo:
        if not r["nps"]:
            continue
        nps = int(r["nps"])
        submitted = dt.datetime.fromisoformat(r["submitted_at"].replace("Z", "+00:00"))
        rows.append(
            {
                "id": r["response_id"],
                "survey_key": r["survey"],
                "survey_version": 1,
                "respondent_kind": "customer",
                "customer_id": r["crm_id"] or None,
                "touchpoint_key": None,
                "language": r["language"],
                "started_at": submitted,
                "submitted_at": submitted,
                "completed": True,
                "nps": nps,
                "nps_category": "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor",
                "comment": r["comment"],
                "source": "import",
            }
        )
    with seeded.begin() as conn:
        corpus.insert(conn, rows)
        taxonomy.apply(conn, parse(FRICTION_TAXONOMY, "frictions.yaml"))
    text_jobs.annotate_bulk(seeded, semantic=False)
    yield seeded


def test_theme_impact_of_each_planted_friction_lowers_nps(demo_store: Engine) -> None:
    with demo_store.connect() as conn:
        themes = taxonomy.list_themes(conn, "frictions")
    report = analytics.theme_impact(demo_store, themes)
    by_key = {t.theme: t for t in report.themes}
    for key in FRICTIONS:
        theme = by_key[key]
        assert theme.volume >= 5, (key, theme.volume)
        # those who mention it score lower: fixing it would raise NPS (a positive impact)
        assert theme.nps_with is not None and theme.nps_without is not None
        assert theme.nps_with < theme.nps_without, (key, theme)
        assert theme.nps_impact is not None and theme.nps_impact > 0, (key, theme)
