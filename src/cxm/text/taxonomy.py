"""User-defined themes (taxonomies): YAML in, stored themes, and tagging texts with them.

A text is tagged with a theme when one of its keywords matches (whole words, any language the
user writes keywords in) or, with the ``nlp`` extra, when one of its sentences is at least
``threshold`` cosine-similar to one of the theme's example phrases. A text can carry several.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.errors import Invalid, NotFound
from cxm.org import service as org
from cxm.store import utcnow
from cxm.text import nlp, schemas
from cxm.text.sentiment import sentences
from cxm.text.tables import taxonomy_themes
from cxm.yamldoc import YamlDoc, parse, validate

STARTER = Path(__file__).parent / "taxonomies" / "starter.yaml"


def starter_doc() -> YamlDoc:
    return parse(STARTER.read_text(encoding="utf-8"), "starter.yaml")


def check(conn: Connection, doc: YamlDoc) -> schemas.TaxonomyFile:
    """Validate a taxonomy document; every owning department must exist."""
    taxonomy = validate(doc, schemas.TaxonomyFile)
    known = {d.key for d in org.list_departments(conn)}
    problems = []
    seen: set[str] = set()
    for i, theme in enumerate(taxonomy.themes):
        if theme.key in seen:
            problems.append(f"{doc.where(('themes', i, 'key'))}: theme '{theme.key}' appears twice")
        seen.add(theme.key)
        if theme.department and theme.department not in known:
            problems.append(
                f"{doc.where(('themes', i, 'department'))}: department '{theme.department}' does "
                f"not exist; known: {', '.join(sorted(known)) or '(none: run cxm init)'}"
            )
        if not theme.keywords and not theme.examples:
            problems.append(
                f"{doc.where(('themes', i))}: theme '{theme.key}' needs keywords or examples"
            )
        for j, keyword in enumerate(theme.keywords):
            if not _WORDISH.search(keyword):
                problems.append(
                    f"{doc.where(('themes', i, 'keywords', j))}: keyword {keyword!r} has no letters"
                )
    if problems:
        raise Invalid("; ".join(problems))
    return taxonomy


_WORDISH = re.compile(r"\w")


def apply(conn: Connection, doc: YamlDoc) -> schemas.ApplySummary:
    """Replace the stored themes of the document's taxonomy with the document's (idempotent)."""
    taxonomy = check(conn, doc)
    before = {
        row.key: row
        for row in conn.execute(
            sa.select(taxonomy_themes).where(taxonomy_themes.c.taxonomy == taxonomy.taxonomy)
        )
    }
    now = utcnow()
    rows = [
        {
            "taxonomy": taxonomy.taxonomy,
            "key": t.key,
            "name": t.name,
            "department_key": t.department,
            "keywords": list(t.keywords),
            "examples": list(t.examples),
            "threshold": t.threshold or taxonomy.threshold,
            "updated_at": now,
        }
        for t in taxonomy.themes
    ]
    conn.execute(taxonomy_themes.delete().where(taxonomy_themes.c.taxonomy == taxonomy.taxonomy))
    conn.execute(taxonomy_themes.insert(), rows)
    created: list[str] = []
    updated: list[str] = []
    for row, theme in zip(rows, taxonomy.themes, strict=True):
        old = before.get(row["key"])
        if old is None:
            created.append(str(row["key"]))
        elif (
            any(
                getattr(old, k) != row[k]
                for k in ("name", "department_key", "keywords", "examples")
            )
            or abs(old.threshold - (theme.threshold or taxonomy.threshold)) > 1e-6
        ):  # REAL on DuckDB
            updated.append(str(row["key"]))
    removed = sorted(set(before) - {str(r["key"]) for r in rows})
    return schemas.ApplySummary(
        taxonomy=taxonomy.taxonomy, created=created, updated=updated, removed=removed
    )


def list_themes(conn: Connection, taxonomy: str | None = None) -> list[schemas.Theme]:
    query = sa.select(taxonomy_themes).order_by(taxonomy_themes.c.taxonomy, taxonomy_themes.c.key)
    if taxonomy:
        query = query.where(taxonomy_themes.c.taxonomy == taxonomy)
    themes = [
        schemas.Theme(
            taxonomy=r.taxonomy,
            key=r.key,
            name=r.name,
            department_key=r.department_key,
            keywords=list(r.keywords),
            examples=list(r.examples),
            threshold=round(r.threshold, 4),  # stored as REAL on DuckDB
        )
        for r in conn.execute(query)
    ]
    if taxonomy and not themes:
        raise NotFound(
            f"taxonomy '{taxonomy}' has no themes: apply one with 'cxm text taxonomy apply FILE' "
            f"(or 'cxm text taxonomy starter' for the shipped starter taxonomy)"
        )
    return themes


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for a theme's keywords: whole words, ``*`` as a suffix wildcard."""
    parts = []
    for keyword in keywords:
        stem = keyword.strip().rstrip("*")
        body = r"\s+".join(re.escape(w) for w in stem.split())
        parts.append(body + (r"\w*" if keyword.strip().endswith("*") else ""))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


_WORD_RUN = re.compile(r"\w+")


@lru_cache(maxsize=1)
def ascii_lookalikes() -> frozenset[str]:
    """Non-ASCII characters that ``re`` matches to an ASCII letter case-insensitively (the
    long s, the Kelvin sign, the dotted and dotless i). A keyword with any other non-ASCII
    character never matches ASCII text."""
    others = "".join(chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF)
    found: set[str] = set()
    for letter in string.ascii_letters:
        found.update(m.group() for m in re.finditer(re.escape(letter), others, re.IGNORECASE))
    return frozenset(found)


def implied_words(keyword: str) -> frozenset[str]:
    """The lower-cased words an ASCII text must hold for ``keyword`` to match it: each ASCII
    word of the keyword made of word characters only, but a last one ending in ``*`` (the
    pattern bounds each by whitespace or a non-word character, so the text holds it as a
    whole word). Words with other characters imply nothing (empty: no word can rule it out)."""
    words = keyword.strip().rstrip("*").split()
    if keyword.strip().endswith("*"):
        words = words[:-1]
    return frozenset(w.lower() for w in words if w.isascii() and _WORD_RUN.fullmatch(w) is not None)


class _KeywordIndex:
    """One theme's keywords, for ASCII text: what ``keyword_pattern`` matches, answered from
    the text's set of lower-cased words where a keyword is one ASCII word (``courier`` matches
    exactly when one of the words is "courier", ``deliver*`` when one starts with "deliver"),
    and by the regex of the other keywords (phrases, punctuation) only when the words hold
    every word one of them implies (``implied_words``). Keywords with a character no ASCII
    text matches (``Lieferung`` does, ``livré`` does not) are left out."""

    def __init__(self, keywords: Sequence[str]) -> None:
        self.exact: set[str] = set()
        prefixes: list[str] = []
        rest: list[str] = []
        self.required: list[frozenset[str]] = []  # per other keyword, words a match implies
        for keyword in keywords:
            stem = keyword.strip().rstrip("*")
            if not stem.isascii() and ascii_lookalikes().isdisjoint(stem):
                continue  # a character no ASCII text matches
            one_word = stem.isascii() and _WORD_RUN.fullmatch(stem) is not None
            if one_word and keyword.strip().endswith("*"):
                prefixes.append(stem.lower())
            elif one_word:
                self.exact.add(stem.lower())
            else:
                rest.append(keyword)
                self.required.append(implied_words(keyword))
        self.prefixes = tuple(prefixes)
        self.rest = keyword_pattern(rest)


@dataclass(frozen=True)
class Tag:
    taxonomy: str
    theme_key: str
    method: str  # keyword | semantic
    similarity: float | None


class Tagger:
    """Tags texts with the themes of stored taxonomies; semantic matching needs ``nlp``."""

    def __init__(
        self,
        themes: Sequence[schemas.Theme],
        *,
        semantic: bool | None = None,
        indexed: bool = True,
    ) -> None:
        self.themes = list(themes)
        # indexed=False searches each theme's pattern in each distinct text (the reference
        # the indexes are tested and benchmarked against).
        self.indexed = indexed
        self.patterns = [keyword_pattern(t.keywords) for t in self.themes]
        self._index = [_KeywordIndex(t.keywords) for t in self.themes]
        # An inverted index over all themes at once: the themes each lower-cased word
        # matches by a one-word keyword (exact or prefix), remembered per word, and the
        # themes that also have other keywords (phrases), tried only when no word hit them.
        self._word_themes: dict[str, frozenset[int]] = {}
        self._phrased = [i for i, index in enumerate(self._index) if index.rest is not None]
        self.semantic = nlp.available() if semantic is None else semantic and nlp.available()
        self._examples: list[np.ndarray] = []
        self._keyword_tags: dict[str, list[Tag]] = {}
        # semantic tags per distinct text: a text is embedded once per tagger, never per call
        self._semantic_tags: dict[str, list[Tag]] = {}
        if self.semantic:
            self._examples = [nlp.encode(list(t.examples)) for t in self.themes]

    def tag(self, texts: Sequence[str]) -> list[list[Tag]]:
        """Tags per text; keyword matching runs once per distinct text (comments repeat)."""
        cache = self._keyword_tags
        extra: dict[str, list[Tag]] = {}  # answers for this call only, once the cache is full
        for text in dict.fromkeys(texts):
            if text in cache:
                continue
            if self.indexed and text.isascii():
                hits = self._ascii_hits(text)
            else:
                hits = [p is not None and p.search(text) is not None for p in self.patterns]
            found = [
                Tag(theme.taxonomy, theme.key, "keyword", None)
                for theme, hit in zip(self.themes, hits, strict=True)
                if hit
            ]
            (cache if len(cache) < 500_000 else extra)[text] = found
        tags: list[list[Tag]] = [cache[t] if t in cache else extra[t] for t in texts]
        if self.semantic and any(len(e) for e in self._examples):
            tags = [list(t) for t in tags]  # semantic tags are appended: a list per text
            self._tag_semantic(texts, tags)
        return tags

    def _ascii_hits(self, text: str) -> list[bool]:
        """Per theme, whether a keyword matches ASCII ``text`` (``_KeywordIndex``): a theme
        matches when one of the words is an exact keyword of it or starts with a prefix
        keyword of it, or, failing that, when the words hold every word one of its other
        keywords implies and that keyword's pattern finds it; one pass over the words."""
        words = set(_WORD_RUN.findall(text.lower()))
        known = self._word_themes
        hit: set[int] = set()
        for word in words:
            themes = known.get(word)
            if themes is None:
                themes = self._themes_of_word(word)
                if len(known) < 200_000:
                    known[word] = themes
            hit.update(themes)
        for i in self._phrased:
            if i in hit:
                continue
            index = self._index[i]
            rest = index.rest
            if (
                rest is not None
                and any(need <= words for need in index.required)
                and rest.search(text) is not None
            ):
                hit.add(i)
        return [i in hit for i in range(len(self._index))]

    def _themes_of_word(self, word: str) -> frozenset[int]:
        return frozenset(
            i for i, index in enumerate(self._index)
            if word in index.exact or (index.prefixes and word.startswith(index.prefixes))
        )  # fmt: skip

    def _tag_semantic(self, texts: Sequence[str], tags: list[list[Tag]]) -> None:
        """Append semantic tags: the distinct sentences of texts not seen before are embedded
        in one batch; a text seen before is answered from the cache."""
        known = self._semantic_tags
        new = [t for t in dict.fromkeys(texts) if t not in known]
        if new:
            split = {t: sentences(t) for t in new}
            distinct = sorted({s for parts in split.values() for s in parts})
            vectors = nlp.encode(distinct)
            index = {s: i for i, s in enumerate(distinct)}
            found: dict[str, list[Tag]] = {t: [] for t in new}
            for theme, examples in zip(self.themes, self._examples, strict=True):
                if not len(examples):
                    continue
                best = (vectors @ examples.T).max(axis=1)  # per distinct sentence
                for text, parts in split.items():
                    similarity = float(max(best[index[s]] for s in parts))
                    if similarity >= theme.threshold:
                        found[text].append(
                            Tag(theme.taxonomy, theme.key, "semantic", round(similarity, 4))
                        )
            if len(known) + len(found) <= 500_000:
                known.update(found)
        else:
            found = {}
        for i, text in enumerate(texts):
            keyed = {t.theme_key for t in tags[i]}
            for tag in known[text] if text in known else found[text]:
                if tag.theme_key not in keyed:
                    tags[i].append(tag)
