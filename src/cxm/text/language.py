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


def _choose(values: Sequence[Any]) -> str:
    if not values or values[0].value < MIN_CONFIDENCE:
        return UNDETERMINED
    code = str(values[0].language.iso_code_639_1.name.lower())
    if code in UNREAD and values[0].value < UNREAD_MIN_CONFIDENCE:
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


def detect_many(texts: Sequence[str]) -> list[str]:
    """``detect`` for many texts: each distinct text once, the ones Lingua must read in one
    parallel pass (it spreads a batch over the machine's cores); answers are remembered."""
    seen = _SEEN
    todo = []
    for t in dict.fromkeys(texts):
        if t in seen:
            continue
        quick = _quick(t)
        if quick is None:
            todo.append(t)
        elif len(seen) < 500_000:
            seen[t] = quick
    found = {}
    if todo:
        values = _build().compute_language_confidence_values_in_parallel(todo)
        found = {t: _choose(v) for t, v in zip(todo, values, strict=True)}
        if len(seen) + len(found) <= 500_000:
            seen.update(found)
    return [seen[t] if t in seen else found.get(t) or _quick(t) or UNDETERMINED for t in texts]
