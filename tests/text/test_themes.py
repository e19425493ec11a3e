from collections import Counter

import pytest

from cxm.errors import Invalid
from cxm.text.themes import discover
from tests.text import corpus

PLANTED = ("late_delivery", "billing_error", "repeat_contact")


def _purity(vectors: str) -> dict[str, tuple[int, float]]:
    rows = corpus.responses(400)
    found = discover([r["comment"] for r in rows], seed=0, vectors=vectors)  # type: ignore[arg-type]
    best: dict[str, tuple[int, float]] = {}
    for theme in found.themes:
        frictions = Counter(rows[i]["friction"] for i in theme.members)
        top, n = frictions.most_common(1)[0]
        purity = n / theme.size
        if top in PLANTED:  # themes come largest first: keep the largest each friction leads
            best.setdefault(top, (theme.id, purity))
    return best


@pytest.mark.parametrize(("vectors", "min_purity"), [("embedding", 0.8), ("tfidf", 0.45)])
def test_discovery_separates_the_planted_frictions(vectors: str, min_purity: float) -> None:
    best = _purity(vectors)
    # each planted friction leads a theme of its own; with embeddings that theme is mostly
    # that friction, the TF-IDF fallback (no nlp extra) is coarser
    assert set(best) == set(PLANTED)
    assert len({theme_id for theme_id, _ in best.values()}) == 3
    assert all(purity >= min_purity for _, purity in best.values()), best


def test_discovery_is_deterministic_for_a_seed_and_labels_clusters() -> None:
    texts = [r["comment"] for r in corpus.responses(300)]
    first = discover(texts, seed=5, vectors="tfidf")
    second = discover(texts, seed=5, vectors="tfidf")
    assert [(t.label, t.size) for t in first.themes] == [(t.label, t.size) for t in second.themes]
    assert all(t.keywords and t.examples for t in first.themes)
    assert first.excluded > 0  # the German and French comments are left out, and counted
    assert sum(t.size for t in first.themes) == first.texts


def test_discovery_needs_some_texts() -> None:
    with pytest.raises(Invalid, match="at least 3 distinct texts"):
        discover(["only one"])
