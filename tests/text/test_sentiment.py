import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxm.errors import Invalid
from cxm.text.sentiment import EmbeddingTier, LexiconTier, fit, sentences, tier
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


def test_text_the_tiers_cannot_read_is_left_unscored() -> None:
    (german,) = LexiconTier().annotate(["Die Lieferung war eine Katastrophe"])
    assert german.language == "de"
    assert german.label == "unscored" and german.score is None


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
    assert french.label == "unscored"
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
        ("ok", "en", "positive"),
        ("Super Service 👍", "und", "positive"),
        ("Great service ❤️", "und", "positive"),  # the presentation selector VADER misreads
        ("Danke 😍", "und", "positive"),
        (":(", "und", "negative"),
        ("La livraison était nulle 😠 :(", "fr", "negative"),  # emoji and emoticons only
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
    # German "die" is the English verb to VADER (-2.9): the article must not score negative.
    (german,) = LexiconTier().annotate(["Die Lieferung war pünktlich"])
    assert (german.language, german.label, german.score) == ("de", "unscored", None)


@given(st.text(max_size=80))
def test_every_text_the_lexicon_knows_gets_a_score(text: str) -> None:
    from cxm.text.language import detect
    from cxm.text.sentiment import lexicon_knows, symbols

    (found,) = LexiconTier().annotate([text])
    lang = detect(text)
    if (lang in ("en", "und") and lexicon_knows(text)) or symbols(text):
        assert found.score is not None and found.label in ("negative", "neutral", "positive")
    assert found.language == lang  # the language is added, never a reason to drop
