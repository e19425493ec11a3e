"""VADER compound scores for many texts, spread over worker processes when there are many.

VADER is pure Python, so one process scores a few thousand texts a second on one core. Bulk
annotation hands the distinct sentences and texts of a whole run here in one call; above
``PARALLEL_MIN`` texts they are split into chunks scored by a pool of forked processes,
which start in milliseconds with the lexicon already loaded.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

# Below this many texts a pool costs more (worker start, pickling) than it saves.
PARALLEL_MIN = 6000
_analyzer: Any = None
_FORK = "fork" in multiprocessing.get_all_start_methods()


def _vader() -> Any:
    global _analyzer
    if _analyzer is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def scores(texts: Sequence[str]) -> list[float]:
    """Compound scores in this process."""
    polarity = _vader().polarity_scores
    return [float(polarity(t)["compound"]) for t in texts]


def workers() -> int:
    """Cores this process may use (the pool never runs more workers than that)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def parallel_scores(texts: Sequence[str], *, processes: int | None = None) -> list[float]:
    """Compound scores, in order; a process pool when there are enough texts and cores."""
    processes = workers() if processes is None else processes
    # Fork only: a spawned worker re-runs the caller's main script, which breaks scripts
    # without a main guard; where fork is missing the work stays in this process.
    if processes < 2 or len(texts) < PARALLEL_MIN or not _FORK:
        return scores(texts)
    _vader()  # load the lexicon once, before the fork, so every worker inherits it
    # Interleaved chunks (every n-th text) keep the work even when long texts cluster;
    # several chunks per worker let a worker slowed by other load take fewer.
    parts = processes * 4
    chunks = [list(texts[i::parts]) for i in range(parts)]
    # A forked worker runs only VADER (pure Python): it touches none of the parent's
    # database or BLAS threads, whose state the fork copies.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        results = list(pool.map(scores, chunks))
    out = [0.0] * len(texts)
    for i, chunk_scores in enumerate(results):
        out[i::parts] = chunk_scores
    return out
