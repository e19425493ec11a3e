"""The survey definition document (YAML/JSON users write) and its display-logic language."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Text = dict[str, str]  # language -> wording
QuestionType = Literal[
    "nps", "csat", "ces", "rating", "single_choice", "multiple_choice", "open_text", "hidden"
]
# Fixed scales of the standard question types; a rating question brings its own.
FIXED_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
KEY = r"^[a-z][a-z0-9_]{0,63}$"
# A whole number as other tools write one: 9, +9, 9.0, 10.00 (Excel, pandas with gaps).
_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Option(Strict):
    value: str = Field(min_length=1, max_length=64)
    text: Text


class Scale(Strict):
    min: int = Field(ge=0, le=100)
    max: int = Field(ge=1, le=100)
    min_label: Text | None = None
    max_label: Text | None = None


class Question(Strict):
    id: str = Field(pattern=KEY)
    type: QuestionType
    required: bool = False
    text: Text | None = None
    show_if: str | None = None
    options: list[Option] | None = None
    scale: Scale | None = None
    max_length: int = Field(2000, ge=1, le=10000)  # open text
    source: str | None = None  # hidden: the trigger-interaction property it carries

    def bounds(self) -> tuple[int, int] | None:
        if self.type in FIXED_SCALES:
            return FIXED_SCALES[self.type]
        if self.type == "rating" and self.scale is not None:
            return self.scale.min, self.scale.max
        return None


def parse_score(raw: str, lo: int, hi: int) -> int:
    """The whole score ``raw`` on the scale lo..hi: "9", " 9 ", "9.0" and "10.00" are 9 and 10.

    Raises ValueError saying why otherwise: not a number, not a whole number (7.5 is never
    rounded or truncated), or outside the scale.
    """
    text = raw.strip()
    pick = f"Please pick one number from {lo} to {hi}"
    if not _WHOLE.fullmatch(text):
        if _NUMBER.fullmatch(text):
            raise ValueError(f"{pick} ({text} is not a whole number; scores are not rounded).")
        raise ValueError(f"{pick} ('{text[:40]}' is not a number).")
    number = int(text.split(".")[0])
    if not lo <= number <= hi:
        raise ValueError(f"{pick} ({number} is outside the scale).")
    return number


def split_choices(raw: str, options: list[str], separator: str = ",",
                  labels: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """The option values in one cell of another tool's export, matching whole options first.

    "Price, value" is the one option ``Price, value`` when the survey has it, not ``Price`` and
    ``value``; "Speed,Advice" is two. The cell is cut at ``separator`` only between pieces that
    join to whole options (spaces around a piece do not count); a JSON list of strings is read
    as the list it is. ``labels`` (wording -> value) lets exports that write the options'
    wording instead of their values match too; values win over wording. When no reading exists
    the plain split is returned, so the caller can say which values are unknown.
    """
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list) and all(isinstance(v, str) for v in items):
            return [v.strip() for v in items if v.strip()]
    known = {k.strip(): v for k, v in (labels or {}).items()} | {o.strip(): o for o in options}
    if text in known:
        return [known[text]]
    pieces = text.split(separator)
    best: dict[int, list[str] | None] = {len(pieces): []}
    # Right to left: best[i] = a reading of pieces[i:] into whole options (longest first).
    for i in range(len(pieces) - 1, -1, -1):
        best[i] = None
        for j in range(len(pieces), i, -1):
            candidate = separator.join(pieces[i:j]).strip()
            rest = best[j]
            if candidate in known and rest is not None:
                best[i] = [known[candidate], *rest]
                break
    found = best[0]
    return found if found is not None else [p.strip() for p in pieces if p.strip()]


class EmailText(Strict):
    subject: Text | None = None
    body: Text | None = None


class Trigger(Strict):
    event: str = Field(min_length=1, max_length=200)  # interaction name, e.g. ticket_closed
    touchpoint: str | None = None
    where: dict[str, str | int | float | bool] = Field(default_factory=dict)
    delay: str = "0m"  # 90s, 30m, 2h, 7d
    # in_product: shown by the in-product snippet when the page reports the event (a page rule
    # is event page_viewed with where: {path: "/help/*"}, a glob); never planned from the log.
    channel: Literal["email", "sms", "in_product", "link"] = "email"
    sample: float = Field(1.0, ge=0.0, le=1.0)

    def delay_seconds(self) -> int:
        match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", self.delay)
        if not match:
            raise ValueError(f"delay '{self.delay}' is not like 30m, 2h or 7d")
        return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


class Wave(Strict):
    """Relationship waves: every month or quarter, invite a sample of the customer base, with
    one reminder to those who have not answered. ``size`` customers (or ``sample`` of the
    eligible base), spread over the values of ``quota_trait`` in proportion to the base, or by
    the explicit ``quotas`` (trait value -> customers)."""

    every: Literal["month", "quarter"] = "quarter"
    size: int | None = Field(None, ge=1, le=10_000_000)
    sample: float | None = Field(None, gt=0.0, le=1.0)
    quota_trait: str | None = Field(None, max_length=64)
    quotas: dict[str, int] = Field(default_factory=dict)
    reminder: str | None = "7d"  # 3d, 7d; null: no reminder
    channel: Literal["email", "sms"] = "email"

    def reminder_seconds(self) -> int | None:
        if self.reminder is None:
            return None
        match = re.fullmatch(r"\s*(\d+)\s*([hd])\s*", self.reminder)
        if not match:
            raise ValueError(f"reminder '{self.reminder}' is not like 3d or 48h")
        return int(match.group(1)) * {"h": 3600, "d": 86400}[match.group(2)]

    @model_validator(mode="after")
    def _one_size(self) -> Wave:
        if self.quotas and not self.quota_trait:
            raise ValueError("quotas need quota_trait: the trait whose values they count")
        if not self.quotas and (self.size is None) == (self.sample is None):
            raise ValueError("give the wave a size (customers) or a sample (share), not both")
        self.reminder_seconds()
        return self


class SurveyDefinition(Strict):
    key: str = Field(pattern=KEY)
    # What staff call the survey in lists and case titles; respondents see the title.
    name: str | None = Field(None, min_length=1, max_length=120)
    title: Text
    kind: Literal["relationship", "transactional", "employee", "partner"] = "transactional"
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    default_language: str = "en"
    intro: Text = Field(default_factory=dict)
    thank_you: Text = Field(default_factory=dict)
    questions: list[Question] = Field(min_length=1)
    open_link: bool = True  # anonymous link for web embeds and QR codes
    expires_days: int = Field(30, ge=1, le=365)
    email: EmailText = Field(default_factory=EmailText)
    triggers: list[Trigger] = Field(default_factory=list)
    waves: Wave | None = None

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)


# ---- display logic: "nps <= 6", "csat <= 3 and reason == 'late'", "a == 1 or b != 2" ----

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<op><=|>=|==|!=|<|>)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Condition:
    question: str
    op: str
    value: float | str


Logic = list[list[Condition]]  # OR of ANDs


def parse_logic(expr: str) -> Logic:
    """Parse a show_if expression; raises ValueError saying what is wrong."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read '{text[pos:]}' in '{expr}'")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    groups: Logic = [[]]
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise ValueError(f"'{expr}' is not like 'question <= 6' (with 'and' / 'or' between)")
        (k1, qid), (k2, op), (k3, raw) = tokens[i : i + 3]
        if k1 != "word" or k2 != "op" or k3 not in ("num", "str"):
            raise ValueError(f"'{expr}' is not like 'question <= 6' (with 'and' / 'or' between)")
        value: float | str = float(raw) if k3 == "num" else raw[1:-1]
        groups[-1].append(Condition(qid, op, value))
        i += 3
        if i == len(tokens):
            return groups
        kind, word = tokens[i]
        if kind != "word" or word.lower() not in ("and", "or"):
            raise ValueError(f"expected 'and' or 'or' after a condition in '{expr}'")
        if word.lower() == "or":
            groups.append([])
        i += 1


def _holds(cond: Condition, answer: Any) -> bool:
    if answer is None or answer == "" or answer == []:
        return False  # an unanswered question satisfies no condition
    values = answer if isinstance(answer, list) else [answer]
    for value in values:
        left: Any = value
        right: Any = cond.value
        if isinstance(right, float):
            try:
                left = float(value)
            except (TypeError, ValueError):
                continue
        else:
            left = str(value)
        ok = {
            "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
        }[cond.op](left, right)  # fmt: skip
        if ok:
            return True
    return False


def evaluate(logic: Logic, answers: dict[str, Any]) -> bool:
    return any(all(_holds(c, answers.get(c.question)) for c in group) for group in logic)


def visible(question: Question, answers: dict[str, Any]) -> bool:
    """Whether ``question`` is shown given the answers so far."""
    if question.type == "hidden":
        return False
    return question.show_if is None or evaluate(parse_logic(question.show_if), answers)


def check(defn: SurveyDefinition) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems beyond the schema, each with the path it is at (empty when valid)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    langs = defn.languages
    if defn.default_language not in langs:
        problems.append((("default_language",), f"'{defn.default_language}' is not in languages"))

    def need(path: tuple[str | int, ...], text: Text | None, what: str) -> None:
        missing = [lang for lang in langs if not (text or {}).get(lang)]
        if missing:
            problems.append((path, f"{what} has no translation for {', '.join(missing)}"))

    need(("title",), defn.title, "the title")
    for name in ("intro", "thank_you"):
        given: Text = getattr(defn, name)
        if given and not given.get(defn.default_language):
            problems.append(((name,), f"needs the default language '{defn.default_language}'"))
    seen: dict[str, Question] = {}
    for i, q in enumerate(defn.questions):
        path: tuple[str | int, ...] = ("questions", i)
        if q.id in seen:
            problems.append(((*path, "id"), f"question id '{q.id}' appears twice"))
        if q.type != "hidden":
            need((*path, "text"), q.text, f"question '{q.id}'")
        if q.type in ("single_choice", "multiple_choice"):
            if not q.options:
                problems.append(((*path, "options"), f"a {q.type} question needs options"))
            for j, opt in enumerate(q.options or []):
                need((*path, "options", j, "text"), opt.text, f"option '{opt.value}'")
            values = [o.value for o in q.options or []]
            if len(set(values)) != len(values):
                problems.append(((*path, "options"), "option values must be unique"))
        elif q.options:
            problems.append(((*path, "options"), f"a {q.type} question takes no options"))
        if q.type == "rating":
            if q.scale is None:
                problems.append(((*path, "scale"), "a rating question needs scale: {min:, max:}"))
            elif not q.scale.min < q.scale.max or q.scale.max - q.scale.min > 20:
                problems.append(
                    ((*path, "scale"), f"scale {q.scale.min}..{q.scale.max} is out of range: "
                     "min must be below max, at most 20 steps apart")
                )  # fmt: skip
        elif q.scale is not None:
            problems.append(((*path, "scale"), f"a {q.type} question has a fixed scale"))
        if q.show_if is not None:
            try:
                logic = parse_logic(q.show_if)
            except ValueError as exc:
                problems.append(((*path, "show_if"), str(exc)))
                logic = []
            for group in logic:
                for cond in group:
                    ref = seen.get(cond.question)
                    if ref is None:
                        where = "a later" if defn.question(cond.question) else "no"
                        problems.append(
                            ((*path, "show_if"), f"refers to '{cond.question}', which is {where} "
                             "question; logic may only use questions asked before it")
                        )  # fmt: skip
                        continue
                    bounds = ref.bounds()
                    if bounds and isinstance(cond.value, float):
                        lo, hi = bounds
                        if not lo <= cond.value <= hi:
                            problems.append(
                                ((*path, "show_if"), f"{cond.value:g} is outside the scale of "
                                 f"'{ref.id}' ({lo}..{hi})")
                            )  # fmt: skip
        seen[q.id] = q
    for i, trig in enumerate(defn.triggers):
        try:
            trig.delay_seconds()
        except ValueError as exc:
            problems.append((("triggers", i, "delay"), str(exc)))
    return problems
