"""Language identification of short, mixed customer text, with Lingua.

Lingua (``lingua-language-detector``, Apache-2.0) ships its n-gram models inside its PyPI
package and is built for short and mixed text: it reads "gostei do produto" as Portuguese and
"great. Well deserved." as English, where a stop-word vote cannot. cxm asks it to choose among
``DETECTED`` (the languages customers of a European or American company write in most, plus
the other languages the multilingual sentiment scorer reads, so that a Polish comment is named
Polish rather than forced into its nearest neighbour). Text with no letters (emoji, ``:)``)
or whose most likely language has a confidence below ``MIN_CONFIDENCE`` is ``und``
(undetermined).

Lingua's paper-style accuracy report is in its repository; ``benchmarks/bench_language.py``
measures it on the short comments customers actually write.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

UNDETERMINED = "und"
# ISO 639-1 codes Lingua chooses among; order is irrelevant.
DETECTED = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "ru", "tr", "ar", "zh", "ja", "ko",
            "th", "da", "sv", "nb", "fi", "ro", "cs", "hu", "el")  # fmt: skip
# Kept for callers that list the languages detection names.
SUPPORTED = DETECTED
# Below this confidence (Lingua's probability of its first choice among ``DETECTED``) a text
# is undetermined ("ok" alone). 0.2 named 68 of 70 short comments in seven languages right
# and none wrong (benchmarks/bench_language.py); 0.5 left 10 of them undetermined.
MIN_CONFIDENCE = 0.2
# Languages no sentiment tier reads: naming one leaves the text unscored, so it takes more
# evidence (English tweets with a few odd words were otherwise named Danish or Swedish).
UNREAD = frozenset({"da", "sv", "nb", "fi", "ro", "cs", "hu", "el"})
UNREAD_MIN_CONFIDENCE = 0.5

_lock = threading.Lock()
_detector: Any = None
_WORD = re.compile(r"[a-z']+")
# Words only English uses among the detected languages: function words (no "is", "in", "die",
# "was", "on", "me", "for", "a", which Dutch, German, French, Spanish or Danish use too) and
# the commonest words of English feedback (no "service", "perfect", "order", "super").
_ENGLISH_WORDS = (
    "the and my i it to of with this that not but they were have has had been are you your "
    "we our at by from very again would could did does just about after when what which who "
    "can there their them be it's i'm don't didn't wasn't isn't got get great thank thanks "
    "happy everything waiting still late days recommend highly fast easy good bad never love "
    "terrible excellent helpful staff refund customer quality wrong broken arrived came "
    "promised okay overall expected honestly well please nobody nothing really time delivery "
    "parcel package charged twice friendly rude slow quick worst best awesome amazing "
    "disappointed lost bag job experience deserved help helped waited "
)
_ENGLISH = frozenset(re.findall(r"\S+", _ENGLISH_WORDS))
_SEEN: dict[str, str] = {}


def _build() -> Any:
    global _detector
    with _lock:
        if _detector is None:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            codes = [IsoCode639_1.from_str(code) for code in DETECTED]
            _detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()
        return _detector


def _letters(text: str) -> bool:
    return any(c.isalpha() for c in text)


# Lingua adds up probabilities in hash-map order, so one text's values can differ in the last
# bits from one call to the next and languages that tie swap places: values this close count
# as a tie, which the language code breaks (the same text always gets the same language).
TIE = 1e-9


def _choose(values: Sequence[Any]) -> str:
    if not values:
        return UNDETERMINED
    best = max(v.value for v in values)
    if best < MIN_CONFIDENCE:
        return UNDETERMINED
    codes = [str(v.language.iso_code_639_1.name.lower()) for v in values if best - v.value < TIE]
    code = min(codes)
    if code in UNREAD and best < UNREAD_MIN_CONFIDENCE:
        return UNDETERMINED
    return code


def _plainly_english(text: str) -> bool:
    """ASCII text with at least two English-only words making a third of its words: English
    without asking Lingua (most comments of an English-speaking company are such)."""
    if not text.isascii():
        return False
    words = _WORD.findall(text.lower())
    hits = len({w for w in words if w in _ENGLISH})
    return hits >= 2 and hits * 3 >= len(words)


def _quick(text: str) -> str | None:
    if not _letters(text):
        return UNDETERMINED
    return "en" if _plainly_english(text) else None


@lru_cache(maxsize=200_000)
def detect(text: str) -> str:
    """The ISO 639-1 code of ``text``'s language (one of ``DETECTED``), or ``und``."""
    return _quick(text) or _choose(_build().compute_language_confidence_values(text))


def lingua_key(text: str) -> str:
    """What Lingua reads of ``text``: texts with the same key get the same confidence values
    (up to the last bits, which differ from call to call even for one text: Lingua adds up
    its probabilities in hash-map order).

    Lingua (``lingua-rs`` ``split_text_into_words``) lower-cases the text and reads only its
    runs of letters (``\\p{L}+``, and single Han, Hiragana and Katakana characters); digits,
    punctuation and whitespace only separate them. For ASCII text those runs are exactly the
    runs of ``a-z`` of the lower-cased text, so "Hi, it was fine. Order 80." and "hi it was
    fine order 12" are one question to Lingua. Other text is its own key (Python's and Rust's
    Unicode tables need not agree on every letter).
    """
    if not text.isascii():
        return text
    return " ".join(_ASCII_LETTERS.findall(text.lower()))


_ASCII_LETTERS = re.compile(r"[a-z]+")


def detect_many(texts: Sequence[str], *, by_key: bool = True) -> list[str]:
    """``detect`` for many texts: the ones Lingua must read go to it in one parallel pass (it
    spreads a batch over the machine's cores), each ``lingua_key`` once; answers are
    remembered per text. ``by_key=False`` asks Lingua about every distinct text (the
    reference the grouping is tested against)."""
    seen = _SEEN
    todo: dict[str, list[str]] = {}
    for t in dict.fromkeys(texts):
        if t in seen:
            continue
        quick = _quick(t)
        if quick is None:
            todo.setdefault(lingua_key(t) if by_key else t, []).append(t)
        elif len(seen) < 500_000:
            seen[t] = quick
    found = {}
    if todo:
        asked = [group[0] for group in todo.values()]
        values = _build().compute_language_confidence_values_in_parallel(asked)
        for group, v in zip(todo.values(), values, strict=True):
            code = _choose(v)
            found.update(dict.fromkeys(group, code))
        if len(seen) + len(found) <= 500_000:
            seen.update(found)
    return [seen[t] if t in seen else found.get(t) or _quick(t) or UNDETERMINED for t in texts]


def forget() -> None:
    """Drop the remembered languages (a benchmark's second run starts cold)."""
    _SEEN.clear()
    detect.cache_clear()
