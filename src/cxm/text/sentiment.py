"""Sentiment in two tiers: a lexicon tier (VADER, always there) and an embedding tier (``nlp``).

Both return, per text and per sentence, a label (negative, neutral, positive) and a score in
[-1, 1]. Every text first gets its language (``language``, Lingua); then:

- English is scored by the tier itself (VADER, or the embedding tier's classifier);
- undetermined text (``und``: emoji, "ok", mixed) is scored by VADER when its lexicon knows
  one of its words, emoticons or emoji;
- text in another language the multilingual encoder reads (German, French, Spanish,
  Portuguese, Italian, Dutch and the others in ``multilingual.LANGUAGES``) is scored by the
  multilingual classifier (``multilingual``), never by the English word list;
- anything else is ``unscored``, with its reason (``unscored_reason``): "not scored: language
  xx", or "not scored: nothing the lexicon knows".

The embedding tier puts a linear classifier on sentence embeddings: by default one built from
labelled anchor phrases, or one trained on the installation's own responses (see ``train``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

import numpy as np

from cxm.errors import Invalid
from cxm.text import language, multilingual, nlp, vader

LABELS = ("negative", "neutral", "positive")
UNSCORED = "unscored"
# VADER's published neutral band for the compound score.
NEUTRAL_BAND = 0.05
TierName = Literal["lexicon", "embedding", "auto"]
TIERS = ("lexicon", "embedding", "auto")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def sentences(text: str) -> list[str]:
    """Split a comment into sentences (a light rule: end punctuation or a line break)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p] or [text.strip()]


def label_for(score: float, band: float = NEUTRAL_BAND) -> str:
    if score >= band:
        return "positive"
    if score <= -band:
        return "negative"
    return "neutral"


@dataclass(frozen=True)
class Annotation:
    """Sentiment of one text; ``score`` is None when the tier cannot read its language."""

    language: str
    label: str
    score: float | None
    sentences: list[dict[str, Any]] | None


class Tier(Protocol):
    name: str
    version: str
    languages: tuple[str, ...]

    def annotate(self, texts: Sequence[str]) -> list[Annotation]: ...


def _unscored(lang: str) -> Annotation:
    return Annotation(lang, UNSCORED, None, None)


def other_languages() -> tuple[str, ...]:
    """Languages other than English that get a real score (the multilingual classifier's)."""
    if not multilingual.available():
        return ()
    return tuple(lang for lang in multilingual.LANGUAGES if lang != "en")


def unscored_reason(lang: str) -> str:
    """Why a text detected as ``lang`` was left unscored, as pages and the API show it."""
    if lang not in ("en", language.UNDETERMINED) and lang not in other_languages():
        return f"not scored: language {lang}"
    return "not scored: nothing the lexicon knows"


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """VADER's lexicon words, its emoticons (entries without letters) and the emoji it can
    score: VADER reads an emoji as its description ("😠" as "angry face"), so only emoji whose
    description holds a lexicon word carry sentiment ("👍", "thumbs up", carries none)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    words = frozenset(analyzer.lexicon)
    emoticons = frozenset(w for w in words if not any(c.isalpha() for c in w))
    # VADER looks emoji up one character at a time; keep those whose reading has a valence.
    emojis = frozenset(
        e for e in analyzer.emojis
        if len(e) == 1 and analyzer.polarity_scores(e)["compound"] != 0
    )  # fmt: skip
    return words, emoticons, emojis


def symbols(text: str) -> str:
    """The language-neutral part of ``text`` VADER can score: its emoji and emoticons, in
    order, joined by spaces ("" when it has none)."""
    _, emoticons, emojis = _vocabulary()
    found: list[str] = []
    for token in text.split():
        if token in emoticons or token.lower() in emoticons:
            found.append(token)
            continue
        found.extend(c for c in token if c in emojis)
    return " ".join(found)


def lexicon_knows(text: str) -> bool:
    """Whether VADER's lexicon knows a word, emoticon or emoji of ``text`` (VADER reads
    emoji per character and words as whitespace tokens stripped of punctuation)."""
    words, _, emojis = _vocabulary()
    for token in text.split():
        low = token.lower()
        if low in words or low.strip(string.punctuation) in words:
            return True
        if any(c in emojis for c in token):
            return True
    return False


# Emoji presentation selectors: VADER reads "❤️" as "red heart" glued to U+FE0F, a word its
# lexicon lacks, so they are dropped before scoring (the glyph is the same).
_PRESENTATION = re.compile("[\ufe0e\ufe0f]")


def readable_text(text: str, lang: str, languages: Sequence[str]) -> str | None:
    """What VADER scores of ``text`` detected as ``lang``: the text itself (a language it
    reads, or undetermined with a known word, emoticon or emoji), or None."""
    text = _PRESENTATION.sub("", text)
    if lang in languages:
        return text
    if lang == language.UNDETERMINED and lexicon_knows(text):
        return text
    return None


class LexiconTier:
    """VADER (Hutto & Gilbert 2014): English lexicon and rules, thousands of texts/s per core;
    text in another language the multilingual classifier reads goes to it (``multilingual``).

    Comments repeat ("Great service!"), so the work is done once per distinct text: language,
    sentence split and scores are cached, and a text of one sentence is scored once. A call
    with many new texts scores their distinct sentences in one parallel pass (``vader``).
    """

    name = "lexicon"
    languages: tuple[str, ...] = ("en",)

    def __init__(self, *, processes: int | None = None, fast: bool = True) -> None:
        self.version = f"vader-{importlib.metadata.version('vaderSentiment')}"
        self.others = other_languages()
        if self.others:
            self.version += f"+{multilingual.version()}"
        self.processes = processes  # None: every core this process may use
        # fast=False takes the reference paths, with the same results: Lingua asked about
        # every distinct text (not once per ``language.lingua_key``), the multilingual
        # encoder's micro-batches one after another in this thread.
        self.fast = fast
        self._scores: dict[str, float] = {}
        self._texts: dict[str, Annotation] = {}

    def score(self, text: str) -> float:
        cached = self._scores.get(text)
        if cached is None:
            cached = vader.scores([text])[0]
            if len(self._scores) < 1_000_000:
                self._scores[text] = cached
        return cached

    def annotate(self, texts: Sequence[str]) -> list[Annotation]:
        known = self._texts
        new = [t for t in dict.fromkeys(texts) if t not in known]
        if new:
            found = self._annotate_distinct(new)
            if len(known) + len(found) <= 500_000:
                known.update(found)
            else:  # too many to keep: answer this call, keep the cache as it was
                return [known.get(t) or found[t] for t in texts]
        return [known[t] for t in texts]

    def _annotate_distinct(self, texts: Sequence[str]) -> dict[str, Annotation]:
        langs = language.detect_many(texts, by_key=self.fast)
        foreign = {t: lang for t, lang in zip(texts, langs, strict=True) if lang in self.others}
        # What VADER reads of each text (the text, or nothing), then split.
        read = {
            t: readable_text(t, lang, self.languages)
            for t, lang in zip(texts, langs, strict=True)
            if t not in foreign
        }
        split = {t: sentences(r) for t, r in read.items() if r is not None}
        # What VADER must read: every distinct sentence, and the whole text when it has
        # more than one (a one-sentence text's score is its sentence's).
        wanted = dict.fromkeys(s for parts in split.values() for s in parts)
        wanted.update(dict.fromkeys(str(read[t]) for t, parts in split.items() if len(parts) > 1))
        todo = [s for s in wanted if s not in self._scores]
        scored = dict(zip(todo, vader.parallel_scores(todo, processes=self.processes),
                          strict=True))  # fmt: skip
        if len(self._scores) + len(scored) <= 1_000_000:
            self._scores.update(scored)
        known = self._scores

        def value(s: str) -> float:
            v = scored.get(s)
            return known[s] if v is None else v

        out: dict[str, Annotation] = self._foreign(foreign)
        for text, lang in zip(texts, langs, strict=True):
            if text in out:
                continue
            parts = split.get(text)
            if parts is None:
                out[text] = _unscored(lang)
                continue
            per = [(s, value(s)) for s in parts]
            whole = per[0][1] if len(per) == 1 else value(read[text] or text)
            out[text] = Annotation(
                lang,
                label_for(whole),
                round(whole, 4),
                [{"text": s, "label": label_for(v), "score": round(v, 4)} for s, v in per],
            )
        return out

    def _foreign(self, found: dict[str, str]) -> dict[str, Annotation]:
        """Texts in another language: the multilingual classifier scores each text and, when
        it has more than one, each sentence (every distinct one encoded once)."""
        if not found:
            return {}
        split = {t: sentences(t) for t in found}
        wanted = list(dict.fromkeys([*found, *(s for p in split.values() if len(p) > 1
                                                for s in p)]))  # fmt: skip
        threads = None if self.fast else 1
        scored = dict(zip(wanted, multilingual.score(wanted, threads=threads), strict=True))
        out = {}
        for text, lang in found.items():
            label, value = scored[text]
            parts = split[text] if len(split[text]) > 1 else [text]
            per = [{"text": s, "label": scored[s][0], "score": scored[s][1]} for s in parts]
            out[text] = Annotation(lang, label, value, per)
        return out


# Anchor phrases: the default embedding classifier scores a text by its similarity to these.
ANCHORS: dict[str, tuple[str, ...]] = {
    "negative": (
        "terrible service, very disappointed",
        "this is awful and I am angry",
        "worst experience ever, never again",
        "it arrived late and broken",
        "nobody helped me and the problem is still not fixed",
        "I was charged wrongly and I am frustrated",
        "poor quality, a waste of money",
        "rude staff and a long wait",
        "I hate it",
        "bad",
    ),
    "neutral": (
        "it was okay",
        "nothing special to report",
        "the order arrived",
        "I bought a product",
        "no comment",
        "average, as expected",
        "I called about my invoice",
        "the delivery came on Tuesday",
        "fine",
    ),
    "positive": (
        "excellent service, thank you so much",
        "I love it, great experience",
        "very happy, everything was perfect",
        "fast delivery and friendly staff",
        "the agent solved my problem quickly",
        "great quality and good value",
        "highly recommend",
        "wonderful, amazing, fantastic",
        "good",
    ),
}
ANCHOR_TEMPERATURE = 0.05
# The embedding score is P(positive) - P(negative): a label needs a clear margin.
BAND = 1 / 3


@dataclass(frozen=True)
class LinearClassifier:
    """Softmax over ``X @ coef.T + intercept``; rows of ``coef`` follow ``labels``."""

    version: str
    labels: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = x @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def scores(self, x: np.ndarray) -> np.ndarray:
        """P(positive) - P(negative), in [-1, 1]."""
        p = self.probabilities(x)
        return np.asarray(p[:, self.labels.index("positive")] - p[:, self.labels.index("negative")])

    def predict(self, x: np.ndarray) -> list[str]:
        return [self.labels[i] for i in self.probabilities(x).argmax(axis=1)]


def anchor_classifier() -> LinearClassifier:
    """Class centroids of the anchor phrases as a linear classifier (no training data)."""
    rows = []
    for label in LABELS:
        centroid = nlp.encode(list(ANCHORS[label])).mean(axis=0)
        rows.append(centroid / np.linalg.norm(centroid))
    digest = hashlib.sha1(repr(sorted(ANCHORS.items())).encode()).hexdigest()[:8]
    return LinearClassifier(
        f"{nlp.ENCODER}/anchors-{digest}",
        LABELS,
        np.stack(rows) / ANCHOR_TEMPERATURE,
        np.zeros(len(LABELS)),
    )


class EmbeddingTier:
    """Sentence embeddings (all-MiniLM-L6-v2, shipped in a PyPI package) + a linear classifier."""

    name = "embedding"
    languages: tuple[str, ...] = ("en",)

    def __init__(self, classifier: LinearClassifier | None = None) -> None:
        if not nlp.available():
            raise ImportError(nlp.missing_message())
        self.classifier = classifier or anchor_classifier()
        self.version = self.classifier.version
        self._lexicon = LexiconTier()

    def annotate(self, texts: Sequence[str]) -> list[Annotation]:
        """Texts in a language the encoder reads get the classifier's score; the others go to
        the lexicon tier, which scores what it can of them (emoji, known words)."""
        langs = language.detect_many(texts)
        readable = [lang in self.languages for lang in langs]
        others = [t for t, ok in zip(texts, readable, strict=True) if not ok]
        fallback = dict(zip(others, self._lexicon.annotate(others), strict=True))
        split = [sentences(t) if ok else [] for t, ok in zip(texts, readable, strict=True)]
        whole = {t for t, ok in zip(texts, readable, strict=True) if ok}
        distinct = sorted(whole | {s for parts in split for s in parts})
        scores: dict[str, float] = {}
        if distinct:
            values = self.classifier.scores(nlp.encode(distinct))
            scores = dict(zip(distinct, (float(v) for v in values), strict=True))
        out = []
        for text, lang, parts in zip(texts, langs, split, strict=True):
            if lang not in self.languages:
                out.append(fallback[text])
                continue
            value = scores[text]
            per = [
                {"text": s, "label": label_for(scores[s], BAND), "score": round(scores[s], 4)}
                for s in parts
            ]
            out.append(Annotation(lang, label_for(value, BAND), round(value, 4), per))
        return out


def tier(name: str, classifier: LinearClassifier | None = None) -> tuple[Tier, str | None]:
    """The tier for ``name`` and, when it had to fall back, a note saying so."""
    if name not in TIERS:
        raise Invalid(f"tier '{name}' is unknown: use one of {', '.join(TIERS)}")
    if name in ("embedding", "auto"):
        if nlp.available():
            return EmbeddingTier(classifier), None
        if name == "embedding":
            return LexiconTier(), nlp.missing_message()
    return LexiconTier(), None


@dataclass(frozen=True)
class TrainingReport:
    version: str
    trained_on: int
    held_out: int
    accuracy: float
    macro_f1: float
    lexicon_accuracy: float  # the lexicon tier on the same held-out texts, for comparison
    label_counts: dict[str, int]


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    scores = []
    for label in LABELS:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])) if truth else 0.0


def fit(
    texts: Sequence[str], labels: Sequence[str], *, seed: int = 0, held_out: float = 0.2
) -> tuple[LinearClassifier, TrainingReport]:
    """Fit a logistic regression on embeddings of ``texts`` with weak ``labels``.

    The held-out split is by distinct text, so a comment repeated word for word cannot sit on
    both sides and flatter the accuracy.
    """
    if not nlp.available():
        raise Invalid(nlp.missing_message().split(";")[0] + " to train a sentiment model")
    from sklearn.linear_model import LogisticRegression

    counts = {label: sum(lab == label for lab in labels) for label in LABELS}
    if len(texts) < 30 or sum(c > 0 for c in counts.values()) < 2:
        raise Invalid(
            f"need at least 30 English comments with a score across two or more sentiment "
            f"classes to train; found {len(texts)} ({counts})"
        )
    distinct = sorted(set(texts))
    rng = np.random.default_rng(seed)
    test_set = set(rng.choice(distinct, size=max(1, int(len(distinct) * held_out)), replace=False))
    vectors = nlp.encode(distinct)
    index = {t: i for i, t in enumerate(distinct)}
    train = [(index[t], lab) for t, lab in zip(texts, labels, strict=True) if t not in test_set]
    test = [(index[t], lab) for t, lab in zip(texts, labels, strict=True) if t in test_set]
    model = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced", random_state=seed)
    model.fit(vectors[[i for i, _ in train]], [lab for _, lab in train])
    present = tuple(str(c) for c in model.classes_)
    coef = np.zeros((len(LABELS), vectors.shape[1]))
    intercept = np.full(len(LABELS), -1e3)  # a class never seen is never predicted
    for row, label in enumerate(present):
        if len(present) == 2:  # binary logistic regression keeps one row: logit of classes_[1]
            coef[LABELS.index(label)] = model.coef_[0] * (1 if row == 1 else 0)
            intercept[LABELS.index(label)] = model.intercept_[0] if row == 1 else 0.0
        else:
            coef[LABELS.index(label)] = model.coef_[row]
            intercept[LABELS.index(label)] = model.intercept_[row]
    digest = hashlib.sha1(coef.tobytes() + intercept.tobytes()).hexdigest()[:8]
    classifier = LinearClassifier(f"{nlp.ENCODER}/trained-{digest}", LABELS, coef, intercept)
    truth = [lab for _, lab in test]
    predicted = classifier.predict(vectors[[i for i, _ in test]]) if test else []
    lexicon = LexiconTier()
    lexicon_predicted = [a.label for a in lexicon.annotate([distinct[i] for i, _ in test])]
    report = TrainingReport(
        classifier.version,
        len(train),
        len(test),
        round(accuracy(truth, predicted), 4),
        round(macro_f1(truth, predicted), 4),
        round(accuracy(truth, lexicon_predicted), 4),
        counts,
    )
    return classifier, report


def weak_label(nps: int | None, csat: int | None) -> str | None:
    """A response's score as a weak sentiment label: NPS category, else CSAT."""
    if nps is not None:
        return "positive" if nps >= 9 else "neutral" if nps >= 7 else "negative"
    if csat is not None:
        return "positive" if csat >= 4 else "neutral" if csat == 3 else "negative"
    return None
