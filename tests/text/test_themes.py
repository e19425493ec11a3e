from collections import Counter
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.text import analytics
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


def _brand_complaints() -> list[str]:
    """Complaints as customers tweet them: handles, links and the brand's name everywhere."""
    late = [
        "@AcmeAir flight delayed 3 hours again http://t.co/x1Yz9 #AcmeAir",
        "AcmeAir delayed my flight, late for the meeting https://acmeair.com/status",
        "Acme Air flight late again, delayed at the gate @AcmeAir",
        "@AcmeAir @jane_doe delayed two hours, why is Acme Air always late",
    ]
    bags = [
        "@AcmeAir lost my bag, no luggage after 2 days http://t.co/abc",
        "AcmeAir lost luggage again, where is my bag?",
        "Acme Air's baggage desk lost my suitcase and bag @AcmeAir",
        "@AcmeAir still no bag, lost luggage claim ignored www.acmeair.com/bags",
    ]
    phone = ["@AcmeAir on hold for an hour, nobody answers the phone",
             "AcmeAir customer service phone line on hold forever &amp; hung up",
             "Called Acme Air three times, on hold, phone disconnects @AcmeAir",
             "@AcmeAir hold time on the phone is 2 hours http://t.co/hold"]  # fmt: skip
    return (late + bags + phone) * 3


def test_handles_urls_and_the_company_names_never_become_theme_words() -> None:
    from cxm.text.themes import clean, stop_pattern

    stop = stop_pattern(["Acme Air"])
    assert clean("@AcmeAir lost my bag http://t.co/x1Yz9 #AcmeAir &amp; Acme Air's desk", stop) == (
        "lost my bag desk"
    )
    found = discover(_brand_complaints(), k=3, seed=0, vectors="tfidf", stop_names=["Acme Air"])
    words = {w for t in found.themes for kw in t.keywords for w in kw.split()}
    assert not words & {"acmeair", "acme", "air", "http", "co", "https", "www", "com", "jane_doe",
                        "amp"}  # fmt: skip
    # and the three complaints come apart
    assert [sorted(t.members) for t in found.themes] != []
    groups = [{i % 12 // 4 for i in t.members} for t in found.themes]
    assert sorted(len(g) for g in groups) == [1, 1, 1]


def test_without_the_stop_list_the_brand_is_a_theme_word() -> None:
    found = discover(_brand_complaints(), k=3, seed=0, vectors="tfidf")
    words = {w for t in found.themes for kw in t.keywords for w in kw.split()}
    assert words & {"acme", "acmeair", "air"}  # what the stop list is for


def test_stored_embeddings_make_a_rerun_encode_only_new_comments(seeded: Engine) -> None:
    from cxm.text import embeddings, multilingual, themes

    encoded: list[str] = []

    def counting(texts: list[str]) -> np.ndarray:  # the real encoder, counted
        encoded.extend(texts)
        return multilingual.encode(texts)

    progress: list[tuple[int, int]] = []
    first = [r["comment"] for r in corpus.responses(120, seed=21)]
    more = [*first, "colis jamais arrivé"]
    encode = embeddings.cached_encoder(
        seeded, "multilingual", lambda d, t: progress.append((d, t)), chunk=50, encode=counting
    )
    found = discover(first, k=3, seed=0, vectors="multilingual", lang=None, encode=encode)
    distinct = len({themes.clean(t) for t in first})
    assert len(encoded) == distinct
    assert progress[-1] == (distinct, distinct) and len(progress) == -(-distinct // 50)
    # A new encoder on the same store (as after a restart of the worker): nothing to encode.
    encoded.clear()
    again_encode = embeddings.cached_encoder(seeded, "multilingual", encode=counting)
    again = discover(first, k=3, seed=0, vectors="multilingual", lang=None, encode=again_encode)
    assert encoded == []
    assert [t.members for t in again.themes] == [t.members for t in found.themes]
    # One new comment: exactly one encoding.
    grown = discover(more, k=3, seed=0, vectors="multilingual", lang=None, encode=again_encode)
    assert encoded == ["colis jamais arrivé"]
    # Stored vectors are the encoder's own: the same themes as encoding afresh.
    fresh = discover(more, k=3, seed=0, vectors="multilingual", lang=None)
    assert [t.members for t in fresh.themes] == [t.members for t in grown.themes]


def test_discovery_job_embeds_nothing_the_second_time(comments: Any) -> None:
    from cxm.text import embeddings, service
    from cxm.text.tables import text_embeddings

    engine, _ = comments
    stages: list[list[str]] = [[], []]
    for run in stages:
        service.discover_themes(
            engine, analytics.EVERYONE, k=4, vectors="multilingual",
            on_progress=lambda stage, done, total, run=run: run.append(stage),
        )  # fmt: skip
    embedded = [s for s in stages[0] if s.startswith("embedding")]
    assert embedded and embedded[-1].endswith("comments not embedded before")
    assert not [s for s in stages[1] if s.startswith("embedding")]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(text_embeddings)).scalar()
        model = conn.execute(sa.select(text_embeddings.c.model).limit(1)).scalar()
    assert rows == int(embedded[-1].split()[3]) and model == embeddings.model_id("multilingual")


def test_erasing_a_persons_comments_clears_the_stored_embeddings(seeded: Engine) -> None:
    from cxm.text import embeddings, service
    from cxm.text.tables import text_embeddings

    encode = embeddings.cached_encoder(seeded, "multilingual")
    encode(["my parcel never arrived", "billing error again"])
    count = sa.select(sa.func.count()).select_from(text_embeddings)
    with seeded.connect() as conn:
        assert conn.execute(count).scalar() == 2
    with seeded.begin() as conn:
        service.forget(conn, "survey_response", ["r-1"])
    with seeded.connect() as conn:
        assert conn.execute(count).scalar() == 0


def test_cli_discovery_gives_the_same_themes_over_stored_embeddings(
    comments: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from cxm.cli.main import app as cli
    from cxm.text.tables import text_embeddings

    engine, _ = comments
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()  # the CLI opens the store itself
    monkeypatch.setenv("CXM_DATABASE_URL", url)
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    args = ["text", "themes", "--vectors", "multilingual", "--k", "4", "--json"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    count = sa.select(sa.func.count()).select_from(text_embeddings)
    with engine.connect() as conn:
        stored = conn.execute(count).scalar()
    engine.dispose()
    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    with engine.connect() as conn:
        assert stored and conn.execute(count).scalar() == stored
    engine.dispose()
    assert json.loads(again.output)["themes"] == json.loads(first.output)["themes"]


def test_loading_the_encoder_writes_no_progress_bar_of_its_own() -> None:
    """A command's output holds its own progress only: the library's "Loading weights" bar,
    which broke into `cxm text themes`, stays off (a fresh process, where the model loads)."""
    import subprocess
    import sys

    code = "from cxm.text import nlp; print(nlp.encode(['The parcel came late.']).shape)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384)"
    assert "Loading weights" not in done.stderr + done.stdout
