"""Theme recovery: do discovered themes match the reasons people labelled complaints with?

Data: ``benchmarks/data/airline-complaints/complaints.csv``, the negative tweets of the
"Twitter US Airline Sentiment" corpus (Figure Eight's Data for Everyone, CC BY-NC-SA 4.0) whose
human-labelled reason is one of the seven largest (customer service issue, late flight,
cancelled flight, lost luggage, bad flight, flight booking problems, flight attendant
complaints) with a contributor confidence of at least 0.6: 6,407 tweets.

Recovery is measured two ways against the human reasons: the adjusted Rand index (Hubert &
Arabie 1985, scikit-learn's ``adjusted_rand_score``; 0 is chance, 1 identical partitions) and
the matched-label score (each discovered theme is matched one-to-one to a reason by the
Hungarian method, scipy's ``linear_sum_assignment``; the share of tweets whose theme matches
their reason). Both runs use k = 7, the number of reasons.

Baseline, side by side: plain TF-IDF (scikit-learn ``TfidfVectorizer``, English stop words) and
k-means (``KMeans``, k-means++, 10 restarts) on the raw tweets. cxm: ``themes.discover`` with
the airlines' names as the company stop list (handles and URLs are stripped anyway), on TF-IDF
and on the multilingual sentence encoder's vectors.

    .venv/bin/python benchmarks/bench_themes.py [--n 6407] [--seed 0] [--multilingual]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score

from cxm.text import themes

DATA = Path(__file__).parent / "data" / "airline-complaints" / "complaints.csv"
# The companies' own names: the airline column, plus JetBlue (the corpus files its tweets
# under "Delta").
STOP_NAMES = ["Virgin America", "United", "Southwest", "Delta", "US Airways", "American",
              "JetBlue", "American Air", "Southwest Air"]  # fmt: skip


def matched_label_score(truth: list[str], found: np.ndarray) -> float:
    """Share of texts whose cluster is matched (one-to-one, Hungarian) to their label."""
    labels = sorted(set(truth))
    clusters = sorted(set(found.tolist()))
    table = np.zeros((len(clusters), len(labels)))
    for t, f in zip(truth, found, strict=True):
        table[clusters.index(f), labels.index(t)] += 1
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(truth))


def assignments(discovery: themes.Discovery, n: int) -> np.ndarray:
    out = np.full(n, -1)
    for theme in discovery.themes:
        out[theme.members] = theme.id
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="tweets (default: all 6,407)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--multilingual", action="store_true", help="also the multilingual vectors (minutes)"
    )
    args = parser.parse_args()
    with DATA.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if args.n and args.n < len(rows):
        pick = np.random.default_rng(args.seed).choice(len(rows), size=args.n, replace=False)
        rows = [rows[i] for i in sorted(pick)]
    texts = [r["text"] for r in rows]
    truth = [r["reason"] for r in rows]
    k = len(set(truth))
    print(f"{len(texts):,} complaints, {k} human-labelled reasons")
    print(f"{'method':44} {'ARI':>6} {'matched':>8} {'seconds':>8}")

    start = time.perf_counter()
    x = TfidfVectorizer(stop_words="english", min_df=2).fit_transform(texts)
    base = KMeans(k, n_init=10, random_state=args.seed).fit_predict(x)
    base_ari = adjusted_rand_score(truth, base)
    base_matched = matched_label_score(truth, base)
    print(f"{'baseline: TF-IDF + k-means on raw text':44} {base_ari:6.3f} "
          f"{base_matched:8.3f} {time.perf_counter() - start:8.1f}")  # fmt: skip

    runs: list[tuple[themes.Vectors, list[str] | tuple[()]]] = [
        ("tfidf", ()),
        ("tfidf", STOP_NAMES),
    ]
    if args.multilingual:
        runs.append(("multilingual", STOP_NAMES))
    for vectors, stop in runs:
        start = time.perf_counter()
        found = themes.discover(texts, k=k, seed=args.seed, vectors=vectors, lang=None,
                                stop_names=stop)  # fmt: skip
        got = assignments(found, len(texts))
        kept = got >= 0
        ari = adjusted_rand_score([t for t, ok in zip(truth, kept, strict=True) if ok], got[kept])
        matched = matched_label_score([t for t, ok in zip(truth, kept, strict=True) if ok],
                                      got[kept])  # fmt: skip
        name = f"cxm: {vectors}, {'handles, URLs and names' if stop else 'handles, URLs'} out"
        print(f"{name:44} {ari:6.3f} {matched:8.3f} {time.perf_counter() - start:8.1f}"
              f"   ratio ARI / baseline {ari / base_ari:5.2f}")  # fmt: skip
        print("   themes: " + "; ".join(t.label for t in found.themes))


if __name__ == "__main__":
    main()
