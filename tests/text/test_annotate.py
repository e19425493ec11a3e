import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.customers.tables import customer_traits
from cxm.store import jobs
from cxm.text import analytics, taxonomy
from cxm.text import jobs as text_jobs
from cxm.text.tables import text_annotations, text_themes

Comments = tuple[Engine, list[dict[str, Any]]]
NOW = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def test_bulk_annotation_stores_sentiment_language_and_themes(comments: Comments) -> None:
    engine, rows = comments
    seen: list[tuple[int, int]] = []
    report = text_jobs.annotate_bulk(
        engine, batch=250, semantic=False, on_progress=lambda d, t: seen.append((d, t))
    )
    assert report.annotated == len(rows) and report.tier == "lexicon"
    assert seen[-1] == (len(rows), len(rows))
    with engine.connect() as conn:
        stored = {r.source_id: r for r in conn.execute(sa.select(text_annotations))}
        tags = conn.execute(sa.select(text_themes.c.source_id, text_themes.c.theme_key)).all()
    assert len(stored) == len(rows)
    german = next(r for r in rows if r["comment"].startswith("Die Lieferung"))
    # "the delivery came three days late": scored by the multilingual classifier, not VADER
    assert stored[german["id"]].language == "de" and stored[german["id"]].label == "negative"
    assert stored[german["id"]].score is not None and stored[german["id"]].score < 0
    positive = next(r for r in rows if r["comment"] == "Great service, thank you")
    assert stored[positive["id"]].label == "positive"
    assert stored[positive["id"]].model == text_jobs.lexicon_model()
    tagged = {(sid, key) for sid, key in tags}
    late = next(r for r in rows if r["friction"] == "late_delivery")
    assert (late["id"], "delivery") in tagged
    # the German comment is tagged by its German keyword
    assert (german["id"], "delivery") in tagged


def test_rerun_annotates_only_what_is_pending(comments: Comments) -> None:
    engine, rows = comments
    text_jobs.annotate_bulk(engine, semantic=False)
    again = text_jobs.annotate_bulk(engine, semantic=False)
    assert again.annotated == 0
    redo = text_jobs.annotate_bulk(engine, semantic=False, only_pending=False)
    assert redo.annotated == len(rows)
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(text_annotations)).scalar()
    assert count == len(rows)  # replaced, not duplicated


def test_new_responses_are_annotated_by_a_durable_job(comments: Comments) -> None:
    engine, _ = comments
    assert text_jobs.schedule_pending(engine, limit=100) is not None
    assert text_jobs.schedule_pending(engine, limit=100) is None  # same batch: deduplicated
    assert jobs.run_due(engine, text_jobs.handlers) == 1
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(text_annotations)).scalar()
        assert jobs.pending_count(conn, text_jobs.KIND) == 0
    assert count == 100


def test_theme_impact_of_planted_frictions_has_the_right_sign(comments: Comments) -> None:
    engine, rows = comments
    text_jobs.annotate_bulk(engine, semantic=False)
    with engine.connect() as conn:
        themes = taxonomy.list_themes(conn, "starter")
    report = analytics.theme_impact(engine, themes)
    by_key = {t.theme: t for t in report.themes}
    assert report.responses == len(rows)
    for key in ("delivery", "billing", "repeat_contact"):
        theme = by_key[key]
        assert theme.volume > 30
        # mentioners are detractors here: fixing the theme would raise NPS
        assert theme.nps_impact is not None and theme.nps_impact > 3
        assert theme.nps_impact_low is not None and theme.nps_impact_low > 0
        assert theme.avg_score_with is not None and theme.avg_score_without is not None
        assert theme.avg_score_with < theme.avg_score_without
        assert theme.detractor_share > 0.1
    # impact is roughly share x NPS gap, so the biggest friction costs the most
    assert report.themes[0].theme in ("delivery", "billing", "repeat_contact")
    assert by_key["price"].volume == 0 and by_key["price"].nps_impact is None


def test_impact_matches_the_formula_on_hand_counts(comments: Comments) -> None:
    engine, rows = comments
    text_jobs.annotate_bulk(engine, semantic=False)
    with engine.connect() as conn:
        themes = [t for t in taxonomy.list_themes(conn, "starter") if t.key == "repeat_contact"]
        tagged = {
            r.source_id
            for r in conn.execute(
                sa.select(text_themes.c.source_id).where(
                    text_themes.c.theme_key == "repeat_contact"
                )
            )
        }
    (theme,) = analytics.theme_impact(engine, themes).themes

    def nps(scores: list[int]) -> float:
        return (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores) * 100

    with_ = [r["nps"] for r in rows if r["id"] in tagged]
    without = [r["nps"] for r in rows if r["id"] not in tagged]
    expected = len(with_) / len(rows) * (nps(without) - nps(with_))
    assert abs(theme.nps_impact - expected) < 0.01  # type: ignore[operator]


def test_impact_in_a_segment_counts_only_its_customers(comments: Comments) -> None:
    engine, rows = comments
    text_jobs.annotate_bulk(engine, semantic=False)
    gold = {f"c{i:04d}" for i in range(0, 400, 4)}  # a quarter of the customers
    with engine.begin() as conn:
        conn.execute(customer_traits.insert(), [
            {"customer_id": c, "name": "segment", "value": "gold", "set_at": NOW} for c in gold
        ])  # fmt: skip
        themes = [t for t in taxonomy.list_themes(conn, "starter") if t.key == "repeat_contact"]
        tagged = {r.source_id for r in conn.execute(sa.select(text_themes.c.source_id).where(
            text_themes.c.theme_key == "repeat_contact"))}  # fmt: skip
    report = analytics.theme_impact(engine, themes, analytics.Slice(segment="gold"))
    (theme,) = report.themes
    mine = [r for r in rows if r["customer_id"] in gold and r["nps"] is not None]
    assert theme.volume == sum(r["id"] in tagged for r in mine)
    assert theme.volume < len([r for r in rows if r["id"] in tagged])
    assert theme.share == round(theme.volume / len(mine), 4)
