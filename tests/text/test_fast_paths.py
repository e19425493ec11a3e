"""The fast paths of annotation give exactly what the plain rules give.

VADER's compound score (``cxm.text.vader``) against the ``vaderSentiment`` package itself, and
keyword tagging (``Tagger``, which answers most keywords from a text's set of words) against
a search of each theme's own pattern, on real text and on generated text built to reach
every rule (negations, boosters, "but", "least", idioms, capitals, punctuation, emoji).
"""

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SentimentIntensityAnalyzer

from cxm.text import taxonomy, vader
from cxm.text.schemas import Theme
from cxm.text.sentiment import sentences
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
