"""The fast paths of annotation give exactly what the plain rules give.

VADER's compound score (``cxm.text.vader``) against the ``vaderSentiment`` package itself, and
keyword tagging (``Tagger``, which answers most keywords from an inverted index of words)
against a search of each theme's own pattern, on real text and on generated text built to
reach every rule (negations, boosters, "but", "least", idioms, capitals, punctuation, emoji);
then language detection, the multilingual encoder, the lexicon tier and bulk annotation
against their reference paths on comments in many languages.
"""

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SentimentIntensityAnalyzer

from cxm.text import jobs as text_jobs
from cxm.text import language, multilingual, taxonomy, vader
from cxm.text.schemas import Theme
from cxm.text.sentiment import LexiconTier, sentences
from cxm.text.tables import text_annotations, text_themes
from tests.text import corpus

UMSAB = Path(__file__).parents[2] / "benchmarks" / "data" / "umsab"
_package = SentimentIntensityAnalyzer()


def _reference(text: str) -> float:
    return float(_package.polarity_scores(text)["compound"])


def _real_texts() -> list[str]:
    texts = [str(r["comment"]) for r in corpus.responses(3000, seed=3)]
    texts += [s for t in texts for s in sentences(t)]
    for path in sorted(UMSAB.glob("*/test_text.txt")):
        texts += path.read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(texts))


def test_vader_compound_equals_the_package_on_real_text() -> None:
    texts = _real_texts()
    assert len(texts) > 5000
    assert vader.scores(texts) == [_reference(t) for t in texts]


# Words that reach each rule of VADER: lexicon words, boosters, negations, idioms, "but".
_RULE_WORDS = sorted(
    {*NEGATE, *BOOSTER_DICT, "but", "BUT", "no", "least", "at", "very", "never", "so", "this",
     "without", "doubt", "kind", "of", "or", "nor", "the", "shit", "bomb", "bad", "ass",
     "yeah", "right", "die", "for", "to", "good", "GOOD", "great", "terrible", "love", "hate",
     "okay", "late", "broken", "happy", "Sad", "sort", ":)", ":(", ":-D", "<3", "😠", "❤️",
     "👍", "😀", "!", "!!", "?", "??", "???", "...", "lol", "n't", "isn't", "wasnt", "bus",
     "stop", "kiss", "death", "beating", "heart", "cut", "mustard", "'good'", "great!",
     "(bad)", "HAPPY!", "parcel"}
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_RULE_WORDS), min_size=0, max_size=14),
       st.sampled_from([" ", "  ", ", ", ". "]))  # fmt: skip
def test_vader_compound_equals_the_package_on_generated_text(words: list[str], sep: str) -> None:
    text = sep.join(words)
    assert vader.compound(text) == _reference(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_vader_compound_equals_the_package_on_any_text(text: str) -> None:
    assert vader.compound(text) == _reference(text)


def test_parallel_scores_keep_the_order_of_their_texts() -> None:
    texts = _real_texts()[:3000]
    assert vader.parallel_scores(texts, processes=2) == vader.scores(texts)


def _themes(keyword_lists: list[list[str]]) -> list[Theme]:
    return [
        Theme(
            taxonomy="t",
            key=f"k{i}",
            name=f"k{i}",
            department_key=None,
            keywords=keywords,
            examples=[],
            threshold=0.55,
        )
        for i, keywords in enumerate(keyword_lists)
    ]


def _searched(themes: list[Theme], text: str) -> list[str]:
    """Each theme's own pattern searched in the text: what tagging means."""
    found = []
    for theme in themes:
        pattern = taxonomy.keyword_pattern(theme.keywords)
        if pattern is not None and pattern.search(text):
            found.append(theme.key)
    return found


def test_keyword_tags_equal_a_search_of_each_pattern_on_real_text() -> None:
    starter = yaml.safe_load(taxonomy.STARTER.read_text(encoding="utf-8"))["themes"]
    themes = _themes([t["keywords"] for t in starter])
    texts = _real_texts()
    tagger = taxonomy.Tagger(themes, semantic=False)
    tagged = tagger.tag(texts)
    assert [[t.theme_key for t in tags] for tags in tagged] == [_searched(themes, t) for t in texts]
    assert sum(1 for tags in tagged if tags) > 500


# With the characters that match an ASCII letter case-insensitively: the Kelvin sign, the long
# s and the dotted capital I.
_KEYWORD_WORDS = ["late", "deliver", "on", "hold", "wi-fi", "st.", "\u212aey", "livré",
                  "\u017ftaff", "\u0130nvoice", "bill", "re", "#tag", "a_b", "x2"]  # fmt: skip
_TEXT_WORDS = [*_KEYWORD_WORDS, "delivery", "LATE", "latest", "Hold", "on-hold", "kelvin", "k",
               "key", "KEY", "staff", "livre", "Livré", "invoice", "bills", "#tag", "tag", "wi",
               "fi", "st", "x2y", "ok!", "(late)", "Delivered.", "\u017f", "s"]  # fmt: skip


@st.composite
def _keyword(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(_KEYWORD_WORDS), min_size=1, max_size=3))
    return " ".join(words) + draw(st.sampled_from(["", "*"]))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_keyword(), min_size=1, max_size=4), min_size=1, max_size=4),
    st.lists(st.lists(st.sampled_from(_TEXT_WORDS), max_size=10), min_size=1, max_size=5),
    st.sampled_from([" ", "  ", ", ", "\n", "-"]),
)
def test_keyword_tags_equal_a_search_of_each_pattern_on_generated_text(
    keyword_lists: list[list[str]], text_words: list[list[str]], sep: str
) -> None:
    themes = _themes(keyword_lists)
    texts = [sep.join(words) for words in text_words]
    tagged = taxonomy.Tagger(themes, semantic=False).tag(texts)
    assert [[t.theme_key for t in tags] for tags in tagged] == [_searched(themes, t) for t in texts]


@pytest.mark.parametrize("char", ["\u017f", "\u212a", "\u0130", "\u0131"])
def test_characters_case_equal_to_an_ascii_letter_are_known(char: str) -> None:
    assert char in taxonomy.ascii_lookalikes()


# Annotation's fast paths against their reference paths: Lingua asked once per
# ``lingua_key`` against once per distinct text, the multilingual encoder's micro-batches on a
# thread pool against one after another, and the whole lexicon tier and bulk annotation with
# both (``fast=False``), on comments in many languages.
_OTHER = ["Het pakket kwam twee dagen te laat", "Heel vriendelijk geholpen, top!",
          "Ik wacht nog steeds op mijn terugbetaling", "recebi produto errado",
          "gostei do produto", "El pedido llegó tarde y roto", "Consegna veloce, grazie",
          "Zamówienie przyszło uszkodzone", "Заказ пришёл вовремя", "配送が遅れました",
          "Leveransen var sen", "ok 👍", ":)", "great. Well deserved.", "😠😠", "..."]  # fmt: skip


def _mixed_sample() -> list[str]:
    texts = [str(r["comment"]) for r in corpus.responses(1500, seed=5)]
    for path in sorted(UMSAB.glob("*/test_text.txt")):
        texts += path.read_text(encoding="utf-8").splitlines()[:80]
    texts += _OTHER
    # the same letters in other case, with other digits and punctuation: one Lingua question
    texts += [t.upper() for t in texts[1500:1700:3]]
    texts += [f"{t} (order {i}!)" for i, t in enumerate(texts[:300:7])]
    texts += [t.replace(" ", " -- ") for t in texts[1500::11]]
    return texts


def test_languages_asked_once_per_lingua_key_equal_asking_every_text() -> None:
    texts = _mixed_sample()
    language.forget()
    reference = language.detect_many(texts, by_key=False)
    language.forget()
    fast = language.detect_many(texts)
    assert fast == reference
    assert len(set(reference)) >= 8  # a mixed sample: en, de, fr, es, pt, it, nl, und, ...
    asked = {language.lingua_key(t) for t in texts if language._quick(t) is None}
    assert len(asked) < len({t for t in texts if language._quick(t) is None})


_ASCII_PIECES = ["great", "Service", "LATE", "the", "parcel", "het", "pakket", "kwam", "te",
                 "laat", "die", "Lieferung", "ok", "x"]  # fmt: skip
# What may stand between words (never nothing: that would join them).
_NOISE = [" ", "  ", ", ", ". ", "!", " 42 ", "-", "'", "\n", "#7", "?? ", "3"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_ASCII_PIECES), min_size=1, max_size=6),
       st.lists(st.sampled_from(_NOISE), min_size=7, max_size=7), st.booleans())  # fmt: skip
def test_ascii_texts_with_one_lingua_key_get_the_same_confidence_values(
    words: list[str], noise: list[str], upper: bool
) -> None:
    plain = " ".join(words)
    varied = noise[0].strip() + "".join(w + n for w, n in zip(words, noise[1:] * 2, strict=False))
    varied = varied.upper() if upper else varied
    assert language.lingua_key(plain) == language.lingua_key(varied)
    detector = language._build()
    first = detector.compute_language_confidence_values(plain)
    second = detector.compute_language_confidence_values(varied)
    # Lingua sums in hash-map order, so even one text asked twice can differ in the last
    # bits (and languages that tie can swap places): equal values up to that, and the same
    # answer (ties are broken by language code).
    ours, theirs = {v.language: v.value for v in first}, {v.language: v.value for v in second}
    assert ours.keys() == theirs.keys()
    assert all(abs(ours[k] - theirs[k]) < 1e-12 for k in ours)
    assert language._choose(first) == language._choose(second)


def test_encoder_on_threads_gives_the_packages_vectors() -> None:
    texts = list(dict.fromkeys(_mixed_sample()))[:600]
    assert np.array_equal(multilingual.encode(texts, threads=3),
                          multilingual.encode_serially(texts))  # fmt: skip


def test_lexicon_tier_fast_paths_annotate_as_the_reference_paths() -> None:
    texts = _mixed_sample()
    language.forget()
    reference = LexiconTier(fast=False).annotate(texts)
    language.forget()
    fast = LexiconTier().annotate(texts)
    assert fast == reference
    assert {a.language for a in fast} >= {"en", "de", "fr", "es", "pt", "it", "nl", "und"}
    assert sum(1 for a in fast if a.score is not None and a.language != "en") > 300


def test_bulk_annotation_fast_paths_store_what_the_reference_paths_store(
    seeded: Engine,
) -> None:
    texts = _mixed_sample()
    rows = corpus.responses(len(texts), seed=9)
    for row, text in zip(rows, texts, strict=True):
        row["comment"] = text
    with seeded.begin() as conn:
        corpus.insert(conn, rows)
        taxonomy.apply(conn, taxonomy.starter_doc())

    def stored() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        a, t = text_annotations, text_themes
        with seeded.connect() as conn:
            notes = conn.execute(
                sa.select(a.c.source_id, a.c.language, a.c.label, a.c.score, a.c.sentences)
                .order_by(a.c.source_id)
            ).all()  # fmt: skip
            tags = conn.execute(
                sa.select(t.c.source_id, t.c.taxonomy, t.c.theme_key, t.c.method)
                .order_by(t.c.source_id, t.c.theme_key)
            ).all()  # fmt: skip
        return [tuple(r) for r in notes], [tuple(r) for r in tags]

    language.forget()
    text_jobs.annotate_bulk(seeded, semantic=False, fast=False, batch=700)
    reference = stored()
    language.forget()
    text_jobs.annotate_bulk(seeded, semantic=False, only_pending=False, batch=700)
    fast = stored()
    assert fast == reference
    assert len(fast[0]) == len(texts) and len(fast[1]) > 500
