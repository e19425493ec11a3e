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

_lock = threading.Lock()
_detector: Any = None


def _build() -> Any:
    global _detector
    with _lock:
        if _detector is None:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            codes = [IsoCode639_1.from_str(code) for code in DETECTED]
            _detector = (
                LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                .with_preloaded_language_models()
                .build()
            )
        return _detector


def _letters(text: str) -> bool:
    return any(c.isalpha() for c in text)


def _choose(values: Sequence[Any]) -> str:
    if not values or values[0].value < MIN_CONFIDENCE:
        return UNDETERMINED
    return str(values[0].language.iso_code_639_1.name.lower())


@lru_cache(maxsize=200_000)
def detect(text: str) -> str:
    """The ISO 639-1 code of ``text``'s language (one of ``DETECTED``), or ``und``."""
    if not _letters(text):
        return UNDETERMINED
    return _choose(_build().compute_language_confidence_values(text))


def detect_many(texts: Sequence[str]) -> list[str]:
    """``detect`` for many texts: the distinct ones not seen yet are read in one parallel
    pass (Lingua spreads a batch over the machine's cores)."""
    todo = [t for t in dict.fromkeys(texts) if _letters(t)]
    if len(todo) > 64:
        values = _build().compute_language_confidence_values_in_parallel(todo)
        found = {t: _choose(v) for t, v in zip(todo, values, strict=True)}
        return [found.get(t, UNDETERMINED) for t in texts]
    return [detect(t) for t in texts]
