"""Language detection for English, German, French and Spanish by stop-word share.

Survey comments are short; a stop-word vote is enough to tell these four apart, needs no data
download and runs at hundreds of thousands of texts per second. Anything else is ``und``.
"""

from __future__ import annotations

import re
from functools import lru_cache

SUPPORTED = ("en", "de", "fr", "es")
UNDETERMINED = "und"

_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "and",
            "was",
            "is",
            "it",
            "to",
            "of",
            "my",
            "i",
            "a",
            "an",
            "in",
            "for",
            "on",
            "with",
            "this",
            "that",
            "not",
            "but",
            "they",
            "were",
            "have",
            "has",
            "had",
            "be",
            "been",
            "are",
            "you",
            "your",
            "me",
            "we",
            "our",
            "at",
            "by",
            "from",
            "no",
            "so",
            "very",
            "again",
            "all",
            "would",
            "could",
            "did",
            "do",
            "does",
            "just",
            "about",
            "after",
            "before",
            "when",
            "what",
            "which",
            "who",
            "will",
            "can",
            "there",
            "their",
            "them",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ich",
            "ein",
            "eine",
            "einen",
            "war",
            "mit",
            "zu",
            "den",
            "dem",
            "des",
            "auf",
            "für",
            "von",
            "sich",
            "es",
            "sie",
            "wir",
            "mein",
            "meine",
            "mir",
            "mich",
            "aber",
            "auch",
            "noch",
            "schon",
            "sehr",
            "wieder",
            "immer",
            "nach",
            "bei",
            "wurde",
            "hat",
            "habe",
            "haben",
            "kein",
            "keine",
            "nur",
            "wie",
            "was",
            "wenn",
            "dass",
            "zum",
            "zur",
            "über",
            "ganz",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "et",
            "est",
            "un",
            "une",
            "des",
            "du",
            "de",
            "pas",
            "je",
            "ne",
            "mon",
            "ma",
            "mes",
            "il",
            "elle",
            "nous",
            "vous",
            "ils",
            "avec",
            "pour",
            "sur",
            "dans",
            "au",
            "aux",
            "ce",
            "cette",
            "qui",
            "que",
            "très",
            "encore",
            "toujours",
            "été",
            "était",
            "ai",
            "avons",
            "mais",
            "plus",
            "personne",
            "rien",
            "trop",
            "bien",
            "jamais",
            "fois",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "y",
            "es",
            "un",
            "una",
            "de",
            "del",
            "que",
            "no",
            "mi",
            "mis",
            "con",
            "para",
            "por",
            "en",
            "lo",
            "al",
            "muy",
            "pero",
            "más",
            "ya",
            "fue",
            "era",
            "está",
            "han",
            "hemos",
            "nunca",
            "otra",
            "vez",
            "todo",
            "nada",
            "nadie",
            "porque",
            "como",
            "se",
            "su",
            "sus",
        ]
    ),
}
# word -> the languages it is a stop word of: one dictionary look-up per word
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {
    w: tuple(lang for lang, stop in _STOPWORDS.items() if w in stop)
    for w in set().union(*_STOPWORDS.values())
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Letters only one language uses settle short texts the stop words cannot.
_MARKERS = {"de": re.compile(r"[äöüß]"), "fr": re.compile(r"[àâçèêëîïôœùû]"),
            "es": re.compile(r"[ñ¿¡]")}  # fmt: skip


@lru_cache(maxsize=200_000)
def detect(text: str) -> str:
    """The language of ``text``: one of ``SUPPORTED``, or ``und`` when it cannot tell."""
    words = _WORD.findall(text.lower())
    if not words:
        return UNDETERMINED
    votes = dict.fromkeys(_STOPWORDS, 0)  # in SUPPORTED order: ties resolve as before
    for w in words:
        for lang in _LANGUAGES_OF.get(w, ()):
            votes[lang] += 1
    lowered = text.lower()
    for lang, marker in _MARKERS.items():
        if marker.search(lowered):
            votes[lang] += 2
    best = max(votes, key=lambda lang: votes[lang])
    ranked = sorted(votes.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        # No evidence, or a tie: most comments are English, but say so only for text that
        # looks like plain ASCII words rather than guessing another language.
        return "en" if ranked[0] == 0 and text.isascii() and len(words) <= 3 else UNDETERMINED
    return best
