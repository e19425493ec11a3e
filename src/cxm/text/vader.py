"""VADER compound scores for many texts: a faster reading of the same rules, in parallel.

``compound`` gives exactly what ``vaderSentiment``'s ``polarity_scores(text)["compound"]``
gives (Hutto & Gilbert 2014, vaderSentiment 3.3.2, MIT licence; its lexicon and emoji
descriptions are read from the installed package): the same rules in the same order, with
the same floating-point operations, but each word lower-cased once per text instead of once
per rule (the package lower-cases the whole text again for every sentiment-laden word), no
per-character rebuild of a text without emoji, and none of the proportions (neg/neu/pos) cxm
does not store. ``tests/text/test_vader.py`` checks it equal to the package on real and
generated text.

Bulk annotation hands the distinct sentences and texts of a whole run here in one call; above
``PARALLEL_MIN`` texts they are split into chunks scored by a pool of forked processes,
which start in milliseconds with the lexicon already loaded.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import string
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

# Below this many texts a pool costs more (worker start, pickling) than it saves.
PARALLEL_MIN = 20_000
_analyzer: Any = None
_rules: Any = None
_FORK = "fork" in multiprocessing.get_all_start_methods()


def _vader() -> Any:
    global _analyzer
    if _analyzer is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


class _Rules:
    """The package's lexicon, emoji descriptions and constants, read once."""

    def __init__(self) -> None:
        from vaderSentiment import vaderSentiment as v

        analyzer = _vader()
        self.lexicon: dict[str, float] = analyzer.lexicon
        self.emojis: dict[str, str] = analyzer.emojis
        # The package looks emoji up one character at a time: only one-character keys count.
        self.emoji_chars = frozenset(e for e in self.emojis if len(e) == 1)
        self.booster: dict[str, float] = v.BOOSTER_DICT
        self.special: dict[str, float] = v.SPECIAL_CASES
        self.negate = frozenset(v.NEGATE)
        self.c_incr: float = v.C_INCR
        self.n_scalar: float = v.N_SCALAR


def _load() -> _Rules:
    global _rules
    if _rules is None:
        _rules = _Rules()
    return _rules


def _without_emoji(text: str, emojis: dict[str, str]) -> str:
    """The package's emoji step: each emoji replaced by its description (verbatim rule)."""
    out = []
    prev_space = True
    for ch in text:
        if ch in emojis:
            if not prev_space:
                out.append(" ")
            out.append(emojis[ch])
            prev_space = False
        else:
            out.append(ch)
            prev_space = ch == " "
    return "".join(out)


def _negated(word: str, negate: frozenset[str]) -> bool:
    low = word.lower()
    return low in negate or "n't" in low


def compound(text: str) -> float:
    """VADER's compound score of ``text`` in [-1, 1], rounded to 4 places as the package does."""
    r = _load()
    lexicon, booster, n_scalar, c_incr = r.lexicon, r.booster, r.n_scalar, r.c_incr
    if not r.emoji_chars.isdisjoint(text):
        text = _without_emoji(text, r.emojis)
    text = text.strip()
    punctuation = string.punctuation
    # The package's _strip_punc_if_word: punctuation around a word goes, emoticons stay.
    words = [w if len(bare := w.strip(punctuation)) <= 2 else bare for w in text.split()]
    n = len(words)
    if not n:
        return 0.0
    lower = [w.lower() for w in words]
    upper = sum(map(str.isupper, words))
    is_cap_diff = 0 < n - upper < n
    sentiments: list[float] = [0.0] * n
    for i, low in enumerate(lower):
        # Most words carry no valence: a booster, "kind" of "kind of" or a word the lexicon
        # lacks is 0 in the package too.
        if low not in lexicon or low in booster:
            continue
        if i < n - 1 and low == "kind" and lower[i + 1] == "of":
            continue
        item = words[i]
        valence = lexicon[low]
        if low == "no" and i != n - 1 and lower[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lower[i - 1] == "no")
            or (i > 1 and lower[i - 2] == "no")
            or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[low] * n_scalar
        if item.isupper() and is_cap_diff:
            if valence > 0:
                valence += c_incr
            else:
                valence -= c_incr
        for start_i in range(0, 3):
            j = i - (start_i + 1)
            if i > start_i and lower[j] not in lexicon:
                s = _scalar_inc_dec(words[j], lower[j], valence, is_cap_diff, r)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = _negation_check(valence, lower, start_i, i, r.negate, n_scalar)
                if start_i == 2:
                    valence = _special_idioms_check(valence, lower, i, r)
        sentiments[i] = _least_check(valence, lower, i, lexicon, n_scalar)
    if "but" in lower:
        sentiments = _but_check(lower, sentiments)
    total = float(sum(sentiments))
    ep = min(text.count("!"), 4) * 0.292
    qm_count = text.count("?")
    qm = (qm_count * 0.18 if qm_count <= 3 else 0.96) if qm_count > 1 else 0
    emphasis = ep + qm
    if total > 0:
        total += emphasis
    elif total < 0:
        total -= emphasis
    norm = total / math.sqrt((total * total) + 15)
    return round(max(-1.0, min(1.0, norm)), 4)


def _scalar_inc_dec(word: str, low: str, valence: float, is_cap_diff: bool, r: _Rules) -> float:
    scalar = 0.0
    if low in r.booster:
        scalar = r.booster[low]
        if valence < 0:
            scalar *= -1
        if word.isupper() and is_cap_diff:
            if valence > 0:
                scalar += r.c_incr
            else:
                scalar -= r.c_incr
    return scalar


def _negation_check(
    valence: float, lower: list[str], start_i: int, i: int, negate: frozenset[str], n: float
) -> float:
    if start_i == 0 and _negated(lower[i - 1], negate):
        valence = valence * n
    if start_i == 1:
        if lower[i - 2] == "never" and (lower[i - 1] == "so" or lower[i - 1] == "this"):
            valence = valence * 1.25
        elif lower[i - 2] == "without" and lower[i - 1] == "doubt":
            pass
        elif _negated(lower[i - 2], negate):
            valence = valence * n
    if start_i == 2:
        # The package's precedence: (never and (so or this)) or (so or this).
        if (lower[i - 3] == "never" and (lower[i - 2] == "so" or lower[i - 2] == "this")) or (
            lower[i - 1] == "so" or lower[i - 1] == "this"
        ):
            valence = valence * 1.25
        elif lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
            pass
        elif _negated(lower[i - 3], negate):
            valence = valence * n
    return valence


def _special_idioms_check(valence: float, lower: list[str], i: int, r: _Rules) -> float:
    onezero = f"{lower[i - 1]} {lower[i]}"
    twoonezero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
    twoone = f"{lower[i - 2]} {lower[i - 1]}"
    threetwoone = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
    threetwo = f"{lower[i - 3]} {lower[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in r.special:
            valence = r.special[seq]
            break
    if len(lower) - 1 > i:
        zeroone = f"{lower[i]} {lower[i + 1]}"
        if zeroone in r.special:
            valence = r.special[zeroone]
    if len(lower) - 1 > i + 1:
        zeroonetwo = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
        if zeroonetwo in r.special:
            valence = r.special[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in r.booster:
            valence = valence + r.booster[n_gram]
    return valence


def _least_check(
    valence: float, lower: list[str], i: int, lexicon: dict[str, float], n: float
) -> float:
    if i > 1 and lower[i - 1] not in lexicon and lower[i - 1] == "least":
        if lower[i - 2] != "at" and lower[i - 2] != "very":
            valence = valence * n
    elif i > 0 and lower[i - 1] not in lexicon and lower[i - 1] == "least":
        valence = valence * n
    return valence


def _but_check(lower: list[str], sentiments: list[float]) -> list[float]:
    """The package's rule verbatim, including its lookup of each value's first occurrence
    (``list.index``), so that repeated values are weighted as the package weights them."""
    bi = lower.index("but")
    for sentiment in sentiments:
        si = sentiments.index(sentiment)
        if si < bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 0.5)
        elif si > bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 1.5)
    return sentiments


def scores(texts: Sequence[str]) -> list[float]:
    """Compound scores in this process."""
    return [compound(t) for t in texts]


def workers() -> int:
    """Cores this process may use (the pool never runs more workers than that)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def parallel_scores(texts: Sequence[str], *, processes: int | None = None) -> list[float]:
    """Compound scores, in order; a process pool when there are enough texts and cores."""
    processes = workers() if processes is None else processes
    # Fork only: a spawned worker re-runs the caller's main script, which breaks scripts
    # without a main guard; where fork is missing the work stays in this process.
    if processes < 2 or len(texts) < PARALLEL_MIN or not _FORK:
        return scores(texts)
    _load()  # load the lexicon once, before the fork, so every worker inherits it
    # Interleaved chunks (every n-th text) keep the work even when long texts cluster;
    # several chunks per worker let a worker slowed by other load take fewer.
    parts = processes * 4
    chunks = [list(texts[i::parts]) for i in range(parts)]
    # A forked worker runs only VADER (pure Python): it touches none of the parent's
    # database or BLAS threads, whose state the fork copies.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        results = list(pool.map(scores, chunks))
    out = [0.0] * len(texts)
    for i, chunk_scores in enumerate(results):
        out[i::parts] = chunk_scores
    return out
