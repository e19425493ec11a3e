"""Sentiment accuracy and speed of both tiers on the VADER human-rated corpora.

Data: Hutto & Gilbert (ICWSM 2014) ground truth, MIT licence: 23,706 English texts (tweets,
movie-review snippets, Amazon review snippets, NYT editorial snippets), each with the mean
valence of about 20 human raters on -4..4. Read from ``../shared/data/vader-human-ratings``
next to the repository, or ``--data DIR``.

3-class truth from the human mean: positive above +0.5, negative below -0.5, neutral between.
Prints per corpus and tier: accuracy, macro-F1, Pearson r with the human mean, texts/s, and the
ratio of each tier's r to the VADER paper's Table 4 figure (the baseline). First, per corpus,
how many texts the lexicon tier leaves unscored with its language gate as it is, against the
former gate (only text detected as English was scored; the baseline).

    .venv/bin/python benchmarks/bench_sentiment.py [--quick] [--limit N] [--data DIR]
    .venv/bin/python benchmarks/bench_sentiment.py --unscored-only   # the coverage part alone
    .venv/bin/python benchmarks/bench_sentiment.py --languages-only  # beyond English alone

Beyond English: the UMSAB test tweets (XLM-T, Barbieri et al. LREC 2022; ``benchmarks/data/
umsab``, 870 human-labelled tweets per language, balanced negative/neutral/positive) for
German, French, Spanish, Portuguese, Italian and English. The lexicon tier as cxm runs it
(language detection, then VADER for English, the multilingual classifier for the others)
beside the baseline: VADER reading every tweet as English.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from cxm.text import language, nlp
from cxm.text.sentiment import EmbeddingTier, LexiconTier, Tier, accuracy, macro_f1

CORPORA = {
    "tweets": "tweets_GroundTruth.txt",
    "movie_reviews": "movieReviewSnippets_GroundTruth.txt",
    "amazon_product_reviews": "amazonReviewSnippets_GroundTruth.txt",
    "nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
}
HUMAN_BAND = 0.5


def load(path: Path, limit: int | None) -> tuple[list[str], np.ndarray]:
    texts, ratings = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            ratings.append(float(parts[1]))
            texts.append(parts[2])
    if limit and len(texts) > limit:
        idx = np.random.default_rng(0).choice(len(texts), size=limit, replace=False)
        texts = [texts[i] for i in sorted(idx)]
        ratings = [ratings[i] for i in sorted(idx)]
    return texts, np.array(ratings)


def truth(rating: float) -> str:
    return "positive" if rating > HUMAN_BAND else "negative" if rating < -HUMAN_BAND else "neutral"


def score(tier: Tier, texts: list[str]) -> tuple[list[str], np.ndarray, float]:
    # The benchmark texts are English by construction; score every one of them (the language
    # gate would skip some short tweets it cannot place), so both tiers see the same texts.
    tier.languages = ("en", "und", "de", "fr", "es")  # type: ignore[misc]
    if isinstance(tier, LexiconTier):
        tier.others = ()  # VADER reads them all
    start = time.perf_counter()
    results = tier.annotate(texts)
    seconds = time.perf_counter() - start
    return [r.label for r in results], np.array([r.score or 0.0 for r in results]), seconds


def unscored(texts: list[str]) -> tuple[int, int]:
    """(left unscored by the former gate: not detected as English, left unscored now)."""
    before = sum(language.detect(t) != "en" for t in texts)
    after = sum(a.score is None for a in LexiconTier().annotate(texts))
    return before, after


UMSAB = Path(__file__).parent / "data" / "umsab"
UMSAB_LANGUAGES = ("german", "french", "spanish", "portuguese", "italian", "english")
UMSAB_LABELS = {"0": "negative", "1": "neutral", "2": "positive"}


def languages_part(limit: int | None) -> None:
    """Per language: accuracy and macro-F1 of the lexicon tier as cxm runs it, and VADER."""
    from cxm.text import vader
    from cxm.text.sentiment import label_for

    print(f"{'language':11} {'n':>5} {'scored':>7} {'acc':>6} {'macroF1':>8} "
          f"{'VADER acc':>10} {'VADER F1':>9} {'F1 ratio':>9}")  # fmt: skip
    for folder in UMSAB_LANGUAGES:
        texts = (UMSAB / folder / "test_text.txt").read_text(encoding="utf-8").splitlines()
        gold = [UMSAB_LABELS[x.strip()] for x in
                (UMSAB / folder / "test_labels.txt").read_text().splitlines()]  # fmt: skip
        if limit:
            texts, gold = texts[:limit], gold[:limit]
        found = LexiconTier().annotate(texts)
        scored = [i for i, a in enumerate(found) if a.score is not None]
        # an unscored tweet counts as wrong: it got no reading at all
        labels = [a.label for a in found]
        baseline = [label_for(v) for v in vader.scores(texts)]
        f1, base_f1 = macro_f1(gold, labels), macro_f1(gold, baseline)
        print(f"{folder:11} {len(texts):5d} {len(scored):7d} {accuracy(gold, labels):6.3f} "
              f"{f1:8.3f} {accuracy(gold, baseline):10.3f} {base_f1:9.3f} "
              f"{f1 / base_f1:9.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "vader-human-ratings"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--quick", action="store_true", help="300 texts per corpus")
    parser.add_argument("--limit", type=int, help="texts per corpus (default: all)")
    parser.add_argument("--unscored-only", action="store_true", help="only the coverage part")
    parser.add_argument("--languages-only", action="store_true", help="only beyond English")
    args = parser.parse_args()
    limit = 300 if args.quick else args.limit
    if not args.unscored_only:
        languages_part(limit)
        print()
    if args.languages_only:
        return
    if not args.data.exists():
        sys.exit(f"data not found at {args.data}: pass --data DIR")
    paper = {}
    with (args.data / "reference_paper_table4.csv").open() as f:
        for row in csv.DictReader(f):
            if row["method"] == "VADER":
                paper[row["corpus"]] = float(row["pearson_r"])
    print(f"{'corpus':24} {'n':>6} {'unscored before':>16} {'unscored now':>13} {'ratio':>6}")
    totals = [0, 0, 0]
    for corpus, name in CORPORA.items():
        texts, _ = load(args.data / name, limit)
        before, after = unscored(texts)
        totals = [totals[0] + len(texts), totals[1] + before, totals[2] + after]
        print(f"{corpus:24} {len(texts):6d} {before:16d} {after:13d} "
              f"{after / before if before else 0:6.2f}")  # fmt: skip
    print(f"{'all':24} {totals[0]:6d} {totals[1]:16d} {totals[2]:13d} "
          f"{totals[2] / totals[1] if totals[1] else 0:6.2f}\n")  # fmt: skip
    if args.unscored_only:
        return
    tiers: list[Tier] = [LexiconTier()]
    if nlp.available():
        tiers.append(EmbeddingTier())
    else:
        print(nlp.missing_message())
    print(f"{'corpus':24} {'tier':10} {'n':>6} {'acc':>6} {'macroF1':>8} {'r':>6} "
          f"{'paper r':>8} {'r/paper':>8} {'texts/s':>9}")  # fmt: skip
    for corpus, name in CORPORA.items():
        texts, ratings = load(args.data / name, limit)
        gold = [truth(r) for r in ratings]
        for tier in tiers:
            labels, scores, seconds = score(tier, texts)
            r = float(np.corrcoef(scores, ratings)[0, 1])
            print(
                f"{corpus:24} {tier.name:10} {len(texts):6d} {accuracy(gold, labels):6.3f} "
                f"{macro_f1(gold, labels):8.3f} {r:6.3f} {paper[corpus]:8.3f} "
                f"{r / paper[corpus]:8.2f} {len(texts) / seconds:9.0f}"
            )


if __name__ == "__main__":
    main()
