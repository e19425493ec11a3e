import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxm.errors import Invalid
from cxm.text import multilingual
from cxm.text.sentiment import (
    EmbeddingTier,
    LexiconTier,
    fit,
    sentences,
    tier,
    unscored_reason,
)
from tests.text import corpus


def test_lexicon_tier_labels_and_scores_per_text_and_sentence() -> None:
    lexicon = LexiconTier()
    good, bad, plain = lexicon.annotate(
        ["Great service, thank you!", "Terrible. The parcel arrived broken.", "I ordered a lamp."]
    )
    assert good.label == "positive" and good.score is not None and good.score > 0.5
    assert bad.label == "negative" and bad.score is not None and bad.score < 0
    assert bad.sentences is not None and len(bad.sentences) == 2
    assert all(-1 <= s["score"] <= 1 for s in bad.sentences)
    assert plain.label == "neutral"
    assert lexicon.version.startswith("vader-")


def test_text_in_a_language_no_tier_reads_is_left_unscored_with_its_reason() -> None:
    swedish, finnish = LexiconTier().annotate(
        ["Leveransen var en katastrof och ingen svarade", "Toimitus oli myöhässä taas"]
    )
    assert (swedish.language, swedish.label, swedish.score) == ("sv", "unscored", None)
    assert unscored_reason(swedish.language) == "not scored: language sv"
    assert (finnish.language, finnish.label) == ("fi", "unscored")
    assert unscored_reason("und") == "not scored: nothing the lexicon knows"


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("recebi produto errado", "pt", "negative"),
        ("gostei do produto", "pt", "positive"),
        ("Die Lieferung war eine Katastrophe", "de", "negative"),
        ("Le service était excellent et très rapide", "fr", "positive"),
        ("El pedido llegó roto y nadie me ayudó", "es", "negative"),
        ("Prodotto ottimo, consegna veloce", "it", "positive"),
        ("Slechte service, nooit meer", "nl", "negative"),
    ],
)
def test_other_languages_get_a_real_score_not_the_english_lexicon(
    text: str, language: str, label: str
) -> None:
    (found,) = LexiconTier().annotate([text])
    assert (found.language, found.label) == (language, label)
    assert found.score is not None and -1 <= found.score <= 1
    assert found.sentences is not None and found.sentences[0]["label"] == label
    assert LexiconTier().version.endswith("+" + multilingual.version())


def test_embedding_tier_reads_clear_sentiment() -> None:
    embedding = EmbeddingTier()
    good, bad, french = embedding.annotate(
        [
            "Excellent service, the staff were wonderful",
            "Awful, my order never arrived and nobody helps",
            "Le service était excellent et très rapide",
        ]
    )
    assert good.label == "positive"
    assert bad.label == "negative"
    assert (french.language, french.label) == ("fr", "positive")  # the multilingual scorer
    assert embedding.version.startswith("all-minilm-l6-v2/anchors-")


def test_unknown_tier_is_refused_with_the_known_ones() -> None:
    with pytest.raises(Invalid, match="lexicon, embedding, auto"):
        tier("bert")


def test_sentences_split_on_end_punctuation() -> None:
    assert sentences("Late again! Third time. Not happy") == [
        "Late again!",
        "Third time.",
        "Not happy",
    ]


def test_training_on_weak_labels_reports_held_out_accuracy() -> None:
    rows = [r for r in corpus.responses(250, seed=3) if r["comment"].isascii()]
    texts = [r["comment"] for r in rows]
    labels = [
        "positive" if r["nps"] >= 9 else "neutral" if r["nps"] >= 7 else "negative" for r in rows
    ]
    classifier, report = fit(texts, labels, seed=1)
    assert report.held_out > 0 and report.trained_on > report.held_out
    # comments follow their score closely here; a model that learnt nothing sits near 1/3
    assert report.accuracy > 0.6
    assert classifier.version.startswith("all-minilm-l6-v2/trained-")


def test_training_needs_enough_labelled_comments() -> None:
    with pytest.raises(Invalid, match="at least 30"):
        fit(["good"] * 5, ["positive"] * 5)


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("😠", "und", "negative"),
        ("😊😊", "und", "positive"),
        ("ok", "und", "positive"),
        ("great. Well deserved.", "en", "positive"),
        ("Super Service 👍", "en", "positive"),
        ("Great service ❤️", "en", "positive"),  # the presentation selector VADER misreads
        ("Danke 😍", "de", "positive"),
        (":(", "und", "negative"),
        ("La livraison était nulle 😠 :(", "fr", "negative"),
        ("Die Lieferung war super 😊", "de", "positive"),
    ],
)
def test_short_emoji_and_mixed_text_is_scored_with_its_language(
    text: str, language: str, label: str
) -> None:
    (found,) = LexiconTier().annotate([text])
    assert (found.language, found.label) == (language, label)
    assert found.score is not None


def test_english_text_scores_as_plain_vader_reads_it() -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = ["The parcel came late", "Lovely driver, thanks!", "Two words that should go"]
    reference = SentimentIntensityAnalyzer()
    for text, found in zip(texts, LexiconTier().annotate(texts), strict=True):
        assert found.score == round(reference.polarity_scores(text)["compound"], 4)


def test_another_language_is_never_read_with_the_english_word_list() -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    # German "die" is the English verb to VADER (-2.9); the score must not be VADER's.
    text = "Die Lieferung war super, vielen Dank"
    (german,) = LexiconTier().annotate([text])
    assert german.language == "de" and german.label == "positive"
    assert german.score != round(SentimentIntensityAnalyzer().polarity_scores(text)["compound"], 4)


@given(st.text(max_size=80))
@settings(deadline=None)  # the first text of a script loads its language models
def test_every_text_the_lexicon_knows_gets_a_score(text: str) -> None:
    from cxm.text.language import detect
    from cxm.text.sentiment import lexicon_knows, other_languages

    (found,) = LexiconTier().annotate([text])
    lang = detect(text)
    if lang == "en" or (lang == "und" and lexicon_knows(text)) or lang in other_languages():
        assert found.score is not None and found.label in ("negative", "neutral", "positive")
    else:
        assert found.score is None and found.label == "unscored"
    assert found.language == lang  # the language is added, never a reason to drop
