"""Bulk annotation of survey comments into the store (DuckDB file), lexicon tier.

Builds N responses with comments drawn from realistic phrasings (repeats included, as in real
surveys), annotates them with ``annotate_bulk`` (language, VADER sentiment per text and
sentence, the multilingual classifier for German and French comments, the starter taxonomy's
tags as the lexicon tier applies them, batched writes) and prints comments/s. Baseline, side
by side: VADER called once per comment with no cache and no store (the pure scoring cost).
Then the two fast paths against what they replace, in the same process: VADER's rules as
``cxm.text.vader`` reads them against the package on the same comments, and keyword tagging
with the starter taxonomy against a search of each theme's regex. Also reports the embedding
tier's rate on a sample when the nlp extra is installed.

    .venv/bin/python benchmarks/bench_annotate.py [--quick] [--n 100000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.text import corpus

from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.surveys.tables import responses
from cxm.text import jobs, nlp, taxonomy
from cxm.text import vader as vader_rules
from cxm.text.schemas import Theme
from cxm.text.sentiment import EmbeddingTier, LexiconTier


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 comments")
    args = parser.parse_args()
    n = 5000 if args.quick else args.n
    rows = build(n)
    distinct = len({r["comment"] for r in rows})
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"duckdb:///{Path(tmp) / 'bench.duckdb'}")
        upgrade(engine)
        with engine.begin() as conn:
            org.seed_defaults(conn)
            taxonomy.apply(conn, taxonomy.starter_doc())
            for start in range(0, n, 20_000):
                conn.execute(responses.insert(), rows[start : start + 20_000])
        # Models load once per process (Lingua's n-grams, the multilingual encoder): a cold
        # start, timed apart from the throughput of a running worker.
        start = time.perf_counter()
        LexiconTier().annotate(["Lieferung kam zu spät", "colis arrivé en retard", "ok 👍"])
        loading = time.perf_counter() - start
        start = time.perf_counter()
        report = jobs.annotate_bulk(engine)
        seconds = time.perf_counter() - start
        engine.dispose()
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
    themes = taxonomy.Tagger(starter_themes(), semantic=False).themes
    distinct_texts = list(dict.fromkeys(str(r["comment"]) for r in rows))
    patterns = [taxonomy.keyword_pattern(t.keywords) for t in themes]
    t0 = time.perf_counter()
    for text in distinct_texts:
        [p.search(text) for p in patterns if p is not None]
    search_rate = len(distinct_texts) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    taxonomy.Tagger(themes, semantic=False).tag(distinct_texts)
    tag_rate = len(distinct_texts) / (time.perf_counter() - t0)
    rate = report.annotated / seconds
    print(f"comments: {n:,} ({distinct:,} distinct); annotated {report.annotated:,}, "
          f"tagged {report.tagged:,}")  # fmt: skip
    print(f"models loaded once per process (cold start): {loading:.1f} s")
    print(f"lexicon tier, end to end into DuckDB: {seconds:.1f} s, {rate:,.0f} comments/s")
    print(f"baseline, bare VADER per comment (no cache, no store): {baseline_rate:,.0f}/s")
    print(f"ratio end-to-end / bare VADER: {rate / baseline_rate:.2f}x")
    print(f"VADER's rules in cxm.text.vader (same scores): {rules_rate:,.0f}/s, "
          f"{rules_rate / baseline_rate:.2f}x the package")  # fmt: skip
    print(f"keyword tagging, starter taxonomy, {len(distinct_texts):,} distinct comments: "
          f"{tag_rate:,.0f}/s; each theme's regex searched: {search_rate:,.0f}/s "
          f"({tag_rate / search_rate:.2f}x)")  # fmt: skip
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
