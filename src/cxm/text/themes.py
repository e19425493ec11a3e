"""Theme discovery: cluster a corpus of texts and label each cluster with its own words.

Vectors are sentence embeddings (``nlp`` extra) or, without it, TF-IDF over words and word
pairs. Clustering is spherical k-means (k-means++ seeding from a fixed seed, so the same corpus
and seed give the same themes); k is picked by silhouette when not given. Labels are the top
terms by class-based TF-IDF (c-TF-IDF: a term's weight in the cluster, discounted by how common
it is across clusters).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse

from cxm.errors import Invalid
from cxm.text import multilingual, nlp
from cxm.text.language import UNDETERMINED, detect

Vectors = Literal["auto", "embedding", "multilingual", "tfidf"]
_TOKEN = re.compile(r"[a-z][a-z']+")
_URL = re.compile(r"(?:https?://|www\.)\S*|\b\S+\.(?:com|net|org|co|ly)/\S*", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")
_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|#\d+);")
_SPACES = re.compile(r"\s+")


def stop_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for the company's own names: each name as a phrase, the
    name written as one word ("Acme Retail" also as "AcmeRetail"), and as a hashtag."""
    forms: set[str] = set()
    for name in names:
        words = name.split()
        if not words:
            continue
        forms.add(r"\s+".join(re.escape(w) for w in words))
        forms.add(re.escape("".join(words)))
    if not forms:
        return None
    ordered = sorted(forms, key=len, reverse=True)
    return re.compile(r"(?<!\w)#?(?:" + "|".join(ordered) + r")(?:'s)?(?!\w)", re.IGNORECASE)


def clean(text: str, stop: re.Pattern[str] | None = None) -> str:
    """``text`` without what says nothing about a theme: URLs, @handles, HTML entities and
    the company's own names (``stop``, from ``stop_pattern``); whitespace collapsed."""
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    text = _ENTITY.sub(" ", text)
    if stop is not None:
        text = stop.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "i'm",
        "i've",
        "it's",
        "don't",
        "didn't",
        "wasn't",
        "was've",
        "get",
        "got",
        "also",
        "one",
        "even",
        "still",
        "really",
        "much",
        "many",
        "well",
        "us",
    ]
)


def terms(text: str) -> list[str]:
    """Words (stop words dropped) and adjacent word pairs, lower-cased."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def tfidf(
    texts: Sequence[str], *, min_df: int | None = None, max_terms: int = 5000
) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows (sparse), the vectors when the ``nlp`` extra is missing."""
    docs = [Counter(terms(t)) for t in texts]
    if min_df is None:  # in a small corpus a term used once still says what a text is about
        min_df = 1 if len(texts) < 2000 else 2
    df = Counter(term for doc in docs for term in doc)
    vocab_terms = sorted((t for t, n in df.items() if n >= min_df), key=lambda t: (-df[t], t))
    vocab = {t: i for i, t in enumerate(vocab_terms[:max_terms])}
    rows, cols, vals = [], [], []
    n = len(texts)
    for r, doc in enumerate(docs):
        for term, count in doc.items():
            c = vocab.get(term)
            if c is not None:
                rows.append(r)
                cols.append(c)
                vals.append((1 + math.log(count)) * (math.log((1 + n) / (1 + df[term])) + 1))
    shape = (n, max(len(vocab), 1))
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    return sparse.csr_matrix(sparse.diags(1 / norms) @ matrix)


def _dense_similarity(x: np.ndarray | sparse.csr_matrix, centers: np.ndarray) -> np.ndarray:
    return np.asarray(x @ centers.T)


def kmeans(
    x: np.ndarray | sparse.csr_matrix,
    k: int,
    *,
    weights: np.ndarray,
    seed: int,
    iterations: int = 50,
) -> tuple[np.ndarray, float]:
    """Weighted spherical k-means; returns (assignments, weighted mean cosine to centre)."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    first = int(rng.choice(n, p=weights / weights.sum()))
    centers = [np.asarray(x[first].todense()).ravel() if sparse.issparse(x) else x[first]]
    best = _dense_similarity(x, np.stack(centers))[:, 0]
    for _ in range(1, k):
        # k-means++: pick far points (low similarity) with probability ~ weight * distance
        distance = np.clip(1 - best, 0, None) * weights
        if distance.sum() <= 0:
            break
        pick = int(rng.choice(n, p=distance / distance.sum()))
        row = np.asarray(x[pick].todense()).ravel() if sparse.issparse(x) else x[pick]
        centers.append(row)
        best = np.maximum(best, _dense_similarity(x, row[None, :])[:, 0])
    c = np.stack(centers).astype(np.float64)
    assign = np.zeros(n, dtype=int)
    for step in range(iterations):
        sim = _dense_similarity(x, c)
        new = sim.argmax(axis=1)
        if step and np.array_equal(new, assign):
            break
        assign = new
        for j in range(c.shape[0]):
            members = assign == j
            if not members.any():
                continue
            w = weights[members]
            dense = not sparse.issparse(x)
            centre = w @ x[members] if dense else np.asarray(x[members].T @ w).ravel()
            norm = np.linalg.norm(centre)
            if norm > 0:
                c[j] = centre / norm
    sim = _dense_similarity(x, c)
    cohesion = float((sim[np.arange(n), assign] * weights).sum() / weights.sum())
    return assign, cohesion


def silhouette(
    x: np.ndarray | sparse.csr_matrix,
    assign: np.ndarray,
    weights: np.ndarray,
    *,
    seed: int,
    sample: int = 1500,
) -> float:
    """Mean silhouette (cosine distance), each distinct text counted as often as it occurs.

    Computed on a fixed-seed sample of at most ``sample`` distinct texts.
    """
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    xs, w, labels = x[idx], weights[idx], assign[idx]
    sim = np.asarray((xs @ xs.T).todense()) if sparse.issparse(xs) else xs @ xs.T
    dist = np.clip(1 - sim, 0, None)
    clusters = sorted(set(labels.tolist()))
    if len(clusters) < 2:
        return -1.0
    # weighted distance sums from every text to every cluster
    onehot = np.stack([(labels == c).astype(float) * w for c in clusters], axis=1)
    sums = dist @ onehot
    mass = onehot.sum(axis=0)
    own = np.array([clusters.index(c) for c in labels])
    own_mass = mass[own] - 1  # the text itself (distance 0) does not count
    a = np.where(own_mass > 0, sums[np.arange(len(idx)), own] / np.maximum(own_mass, 1e-9), 0)
    other = sums / np.maximum(mass, 1e-9)
    other[np.arange(len(idx)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(own_mass > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-9), 0)
    return float((s * w).sum() / w.sum())


def cluster(
    x: np.ndarray | sparse.csr_matrix, k: int, *, weights: np.ndarray, seed: int, restarts: int = 5
) -> np.ndarray:
    """The most cohesive of ``restarts`` k-means runs (seeds derived from ``seed``)."""
    best: tuple[float, np.ndarray] | None = None
    for r in range(restarts):
        assign, cohesion = kmeans(x, k, weights=weights, seed=seed * 1000 + r)
        if best is None or cohesion > best[0] + 1e-12:
            best = (cohesion, assign)
    assert best is not None
    return best[1]


def ctfidf_labels(
    texts: Sequence[str], weights: np.ndarray, assign: np.ndarray, k: int, *, top: int = 5
) -> list[list[str]]:
    """Top terms per cluster by class-based TF-IDF."""
    per_cluster: list[Counter[str]] = [Counter() for _ in range(k)]
    for text, w, a in zip(texts, weights, assign, strict=True):
        for term in terms(text):
            per_cluster[a][term] += float(w)
    total: Counter[str] = Counter()
    for counts in per_cluster:
        total.update(counts)
    avg_words = sum(total.values()) / max(k, 1)
    labels = []
    for counts in per_cluster:
        size = sum(counts.values()) or 1
        scored = sorted(
            ((c / size) * math.log(1 + avg_words / total[t]), t) for t, c in counts.items()
        )
        chosen: list[str] = []
        for _, term in reversed(scored):
            # a pair already carries its words; skip words inside a chosen pair and vice versa
            if any(term in other.split() or other in term.split() for other in chosen):
                continue
            chosen.append(term)
            if len(chosen) == top:
                break
        labels.append(chosen)
    return labels


@dataclass(frozen=True)
class DiscoveredTheme:
    id: int
    label: str
    keywords: list[str]
    size: int
    share: float
    examples: list[str]
    members: list[int]  # indexes into the input texts


@dataclass(frozen=True)
class Discovery:
    vectors: str  # embedding | tfidf
    seed: int
    themes: list[DiscoveredTheme]
    note: str | None
    texts: int = 0
    excluded: int = 0


def discover(
    texts: Sequence[str],
    *,
    k: int | None = None,
    seed: int = 0,
    vectors: Vectors = "auto",
    k_range: tuple[int, int] = (3, 12),
    lang: str | None = "en",
    stop_names: Sequence[str] = (),
    encode: Callable[[list[str]], np.ndarray] | None = None,
) -> Discovery:
    """Cluster ``texts`` into themes, largest first; identical texts count by their number.

    Each text is first cleaned (``clean``): URLs, @handles and the company's own names
    (``stop_names``) say nothing about what a customer complains of. Only texts detected as
    ``lang`` or undetermined (short text: "billing again") take part (None: all), so a German
    comment does not form a "theme" of its own just by being German; ``Discovery.excluded``
    counts the others. ``encode`` replaces the
    encoder for embedding vectors (a cache that encodes only texts it has not seen).
    """
    if vectors not in ("auto", "embedding", "multilingual", "tfidf"):
        raise Invalid(f"vectors '{vectors}' is unknown: use auto, embedding, multilingual or tfidf")
    stop = stop_pattern(stop_names)
    cleaned = [clean(t, stop) if t else "" for t in texts]
    kept = [
        c for t, c in zip(texts, cleaned, strict=True)
        if c and (lang is None or detect(t) in (lang, UNDETERMINED))
    ]  # fmt: skip
    counts = Counter(kept)
    distinct = sorted(counts)
    if len(distinct) < 3:
        raise Invalid(f"need at least 3 distinct texts to discover themes; found {len(distinct)}")
    note = None
    used: str = vectors
    if vectors == "auto":
        used = "embedding" if nlp.available() else "tfidf"
    if used == "embedding" and not nlp.available():
        used = "tfidf"
        note = "the nlp extra is not installed: themes were found with TF-IDF vectors"
    x: np.ndarray | sparse.csr_matrix
    if used == "tfidf":
        x = tfidf(distinct)
    else:
        x = (encode or (nlp.encode if used == "embedding" else multilingual.encode))(distinct)
    weights = np.array([counts[t] for t in distinct], dtype=np.float64)
    if k is None:
        low, high = k_range
        best_k, best_score, best_assign = low, -2.0, None
        for candidate in range(low, min(high, len(distinct) - 1) + 1):
            assign = cluster(x, candidate, weights=weights, seed=seed)
            score = silhouette(x, assign, weights, seed=seed)
            if score > best_score + 1e-9:
                best_k, best_score, best_assign = candidate, score, assign
        k = best_k
        assert best_assign is not None
        assign = best_assign
    else:
        if not 2 <= k <= len(distinct):
            raise Invalid(f"k must be between 2 and the number of distinct texts ({len(distinct)})")
        assign = cluster(x, k, weights=weights, seed=seed)
    labels = ctfidf_labels(distinct, weights, assign, k)
    position = {t: i for i, t in enumerate(distinct)}
    members: list[list[int]] = [[] for _ in range(k)]
    for i, key in enumerate(cleaned):
        if key in position:
            members[assign[position[key]]].append(i)
    total = sum(len(m) for m in members) or 1
    themes: list[DiscoveredTheme] = []
    for group in sorted(range(k), key=lambda j: (-len(members[j]), j)):
        if not members[group]:
            continue
        # examples: the most frequent distinct texts of the cluster
        in_cluster = [t for t in distinct if assign[position[t]] == group]
        examples = sorted(in_cluster, key=lambda t: (-counts[t], t))[:3]
        themes.append(
            DiscoveredTheme(
                id=len(themes),
                label=" / ".join(labels[group][:3]) or "(no words)",
                keywords=labels[group],
                size=len(members[group]),
                share=round(len(members[group]) / total, 4),
                examples=examples,
                members=members[group],
            )
        )
    return Discovery(used, seed, themes, note, len(kept), sum(1 for c in cleaned if c) - len(kept))
