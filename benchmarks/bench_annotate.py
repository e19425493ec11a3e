"""Bulk annotation of survey comments into the store (DuckDB file), lexicon tier.

Builds N responses with comments drawn from realistic phrasings (repeats included, as in real
surveys), annotates them with ``annotate_bulk`` (language, VADER sentiment per text and
sentence, the multilingual classifier for German and French comments, the starter taxonomy's
tags as the lexicon tier applies them, batched writes) and prints comments/s, twice in the
same process on two copies of the store: the fast paths, and the reference paths they replace
(``annotate_bulk(fast=False)``: Lingua asked about every distinct text rather than once per
``lingua_key``, the multilingual encoder's micro-batches one after another, each theme's
regex searched in each text), checking both stored the same annotations and tags. Each run's
CPU time (this process's threads and the VADER workers) is printed beside its wall time: on a
shared, loaded machine the CPU seconds are the steadier figure. Baseline, side by side: VADER
called once per comment with no cache and no store (the pure scoring cost). Then the two
older fast paths against what they replace: VADER's rules as ``cxm.text.vader`` reads them
against the package, and keyword tagging against a search of each theme's regex. Also
reports the embedding tier's rate on a sample when the nlp extra is installed.

    .venv/bin/python benchmarks/bench_annotate.py [--quick] [--n 100000] [--no-embedding]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.text import corpus

from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.surveys.tables import responses
from cxm.text import analytics, jobs, language, nlp, taxonomy
from cxm.text import vader as vader_rules
from cxm.text.schemas import Theme
from cxm.text.sentiment import EmbeddingTier, LexiconTier
from cxm.text.tables import text_annotations, text_themes


def build(n: int) -> list[dict[str, object]]:
    rows = corpus.responses(n, seed=11)
    rng = random.Random(5)
    for row in rows:
        row.pop("friction")
        if rng.random() < 0.3:  # a third carry a second sentence from another comment
            row["comment"] = f"{row['comment']}. {rng.choice(rows)['comment']}"
    return rows


def starter_themes() -> list[Theme]:
    doc = yaml.safe_load(taxonomy.STARTER.read_text(encoding="utf-8"))
    return [
        Theme(taxonomy="starter", key=t["key"], name=t["name"], department_key=None,
              keywords=t["keywords"], examples=t.get("examples", []), threshold=0.55)
        for t in doc["themes"]
    ]  # fmt: skip


def _store(path: Path, rows: list[dict[str, object]]) -> Engine:
    engine = create_engine(f"duckdb:///{path}")
    upgrade(engine)
    with engine.begin() as conn:
        org.seed_defaults(conn)
        taxonomy.apply(conn, taxonomy.starter_doc())
        for start in range(0, len(rows), 20_000):
            conn.execute(responses.insert(), rows[start : start + 20_000])
    return engine


def _cpu() -> float:
    """CPU seconds of this process (all its threads) and of its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _annotate(engine: Engine, *, fast: bool) -> tuple[int, float, float]:
    """Annotated comments, wall seconds and CPU seconds of one end-to-end run, cold caches."""
    language.forget()
    wall, cpu = time.perf_counter(), _cpu()
    report = jobs.annotate_bulk(engine, fast=fast)
    return report.annotated, time.perf_counter() - wall, _cpu() - cpu


def _stored(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    a, t = text_annotations, text_themes
    with engine.connect() as conn:
        notes = conn.execute(
            sa.select(a.c.source_id, a.c.language, a.c.label, a.c.score, a.c.sentences)
            .order_by(a.c.source_id)
        ).all()  # fmt: skip
        tags = conn.execute(
            sa.select(t.c.source_id, t.c.taxonomy, t.c.theme_key, t.c.method, t.c.similarity)
            .order_by(t.c.source_id, t.c.taxonomy, t.c.theme_key)
        ).all()  # fmt: skip
    return [tuple(r) for r in notes], [tuple(r) for r in tags]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 comments")
    parser.add_argument("--no-embedding", action="store_true", help="skip the embedding tier")
    args = parser.parse_args()
    n = 5000 if args.quick else args.n
    rows = build(n)
    distinct = len({r["comment"] for r in rows})
    with tempfile.TemporaryDirectory() as tmp:
        fast_store = _store(Path(tmp) / "fast.duckdb", rows)
        reference_store = _store(Path(tmp) / "reference.duckdb", rows)
        # Models load once per process (Lingua's n-grams, the multilingual encoder, the
        # analytics backend): a cold start, timed apart from the throughput of a running
        # worker. A sample of the comments loads every n-gram model they reach.
        start = time.perf_counter()
        sample = list(dict.fromkeys(str(r["comment"]) for r in rows))[:500]
        LexiconTier().annotate(["Lieferung kam zu spät", "colis arrivé en retard", "ok 👍",
                                *sample])  # fmt: skip
        analytics.response_texts(fast_store, limit=1)
        loading = time.perf_counter() - start
        annotated, ref_seconds, ref_cpu = _annotate(reference_store, fast=False)
        annotated_fast, seconds, cpu = _annotate(fast_store, fast=True)
        same = _stored(fast_store) == _stored(reference_store)
        tagged = len({r[0] for r in _stored(fast_store)[1]})
        fast_store.dispose()
        reference_store.dispose()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    sample = [str(r["comment"]) for r in rows[: min(n, 20_000)]]
    t0 = time.perf_counter()
    for text in sample:
        vader.polarity_scores(text)
    baseline_rate = len(sample) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    vader_rules.scores(sample)
    rules_rate = len(sample) / (time.perf_counter() - t0)
    # Keyword tagging of the distinct comments: the tagger against a search of each theme's
    # own pattern (what tagging means, and what it did before).
    themes = starter_themes()
    distinct_texts = list(dict.fromkeys(str(r["comment"]) for r in rows))
    t0 = time.perf_counter()
    taxonomy.Tagger(themes, semantic=False, indexed=False).tag(distinct_texts)
    search_rate = len(distinct_texts) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    taxonomy.Tagger(themes, semantic=False).tag(distinct_texts)
    tag_rate = len(distinct_texts) / (time.perf_counter() - t0)
    rate, ref_rate = annotated_fast / seconds, annotated / ref_seconds
    print(f"comments: {n:,} ({distinct:,} distinct); annotated {annotated_fast:,}, "
          f"tagged {tagged:,}")  # fmt: skip
    print(f"models loaded once per process (cold start): {loading:.1f} s")
    print(f"lexicon tier, end to end into DuckDB: {seconds:.1f} s, {rate:,.0f} comments/s; "
          f"CPU {cpu:.1f} s, {annotated_fast / cpu:,.0f} comments per CPU-second")  # fmt: skip
    print(f"reference paths (fast=False), same run: {ref_seconds:.1f} s, {ref_rate:,.0f} "
          f"comments/s; CPU {ref_cpu:.1f} s, {annotated / ref_cpu:,.0f} comments per "
          f"CPU-second")  # fmt: skip
    print(f"ratio fast / reference: {rate / ref_rate:.2f}x wall, "
          f"{ref_cpu / cpu:.2f}x CPU; same annotations and tags stored: "
          f"{'yes' if same else 'NO'}")  # fmt: skip
    print(f"baseline, bare VADER per comment (no cache, no store): {baseline_rate:,.0f}/s")
    print(f"ratio end-to-end / bare VADER: {rate / baseline_rate:.2f}x")
    print(f"VADER's rules in cxm.text.vader (same scores): {rules_rate:,.0f}/s, "
          f"{rules_rate / baseline_rate:.2f}x the package")  # fmt: skip
    print(f"keyword tagging, starter taxonomy, {len(distinct_texts):,} distinct comments: "
          f"{tag_rate:,.0f}/s; each theme's regex searched: {search_rate:,.0f}/s "
          f"({tag_rate / search_rate:.2f}x)")  # fmt: skip
    if args.no_embedding:
        return
    if nlp.available():
        embedding = EmbeddingTier()
        texts = sorted({str(r["comment"]) for r in rows})[: 300 if args.quick else 2000]
        t0 = time.perf_counter()
        embedding.annotate(texts)
        print(f"embedding tier (CPU), {len(texts):,} distinct comments: "
              f"{len(texts) / (time.perf_counter() - t0):,.0f} comments/s")  # fmt: skip
    else:
        print(nlp.missing_message())


if __name__ == "__main__":
    main()
