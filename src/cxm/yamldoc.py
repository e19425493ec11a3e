"""Load the YAML files users write, keeping line numbers so every error points at its line.

Every YAML a user supplies (files, request bodies, uploads) goes through ``parse``, which checks
size, nesting depth and aliases on the event stream before building anything, and caps the
number of values an alias can expand to: a document nested 5,000 levels deep or an alias bomb
("billion laughs") is refused with Invalid (422) in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor

from cxm.errors import Invalid

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

MAX_CHARS = 2 * 1024 * 1024  # the largest shipped file is ~20 kB
MAX_DEPTH = 64  # nesting of mappings and sequences
MAX_ALIASES = 100  # ``*ref`` uses in one document
MAX_VALUES = 10_000  # values built again through *aliases


@dataclass
class Limits:
    """What one document may hold; ``parse`` refuses more with Invalid."""

    chars: int = MAX_CHARS
    depth: int = MAX_DEPTH
    aliases: int = MAX_ALIASES
    values: int = MAX_VALUES


DEFAULT_LIMITS = Limits()


@dataclass
class YamlDoc:
    """A parsed document plus the line (1-based) where each path starts."""

    data: Any
    source: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def where(self, path: Path_) -> str:
        line = self.line(path)
        dotted = ".".join(str(p) for p in path) or "(top)"
        return f"{self.source} line {line}, {dotted}" if line else f"{self.source}, {dotted}"


class _Walk:
    """Builds plain values from composed nodes; a node reached again through an *alias is
    built again, so the values built that way are counted and capped (no alias bomb)."""

    def __init__(self, source: str, limits: Limits) -> None:
        self.source, self.limits, self.expanded = source, limits, 0
        self.lines: dict[Path_, int] = {}
        self.seen: set[int] = set()
        self.build = SafeConstructor()

    def __call__(self, node: yaml.Node, path: Path_, aliased: bool = False) -> Any:
        if id(node) in self.seen:
            aliased = True
        self.seen.add(id(node))
        if aliased:
            self.expanded += 1
            if self.expanded > self.limits.values:
                raise Invalid(
                    f"{self.source}: *aliases expand to more than {self.limits.values} values; "
                    "write the document out without repeating them"
                )
        else:  # lines of aliased copies would only repeat their anchor's lines
            self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build.construct_object(key_node, deep=True)
                try:
                    out[key] = self(value_node, (*path, key), aliased)
                except TypeError as exc:  # a mapping or list used as a key
                    line = key_node.start_mark.line + 1
                    raise Invalid(
                        f"{self.source} line {line}: a key must be a plain value"
                    ) from exc
                if not aliased:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self(item, (*path, i), aliased) for i, item in enumerate(node.value)]
        return self.build.construct_object(node, deep=True)


def _check_events(text: str, source: str, limits: Limits) -> None:
    """Walk the event stream (no recursion, nothing built) and refuse deep or aliased bombs."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.depth:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise Invalid(f"{source} line {line}: nested more than {limits.depth} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > limits.aliases:
                raise Invalid(f"{source}: more than {limits.aliases} *aliases in one document")


def parse(text: str, source: str = "<input>", limits: Limits = DEFAULT_LIMITS) -> YamlDoc:
    """Parse YAML (JSON is YAML too) with line numbers; syntax errors raise Invalid.

    The document is checked against ``limits`` (size, depth, aliases, expanded values)
    before and while it is built, so a hostile document costs milliseconds, not seconds.
    """
    if len(text) > limits.chars:
        raise Invalid(f"{source}: {len(text)} characters; the limit is {limits.chars}")
    try:
        _check_events(text, source, limits)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise Invalid(f"{source}{where}: not valid YAML: {problem}") from exc
    if node is None:
        raise Invalid(f"{source}: the file is empty")
    walk = _Walk(source, limits)
    try:
        data = walk(node, ())
    except (yaml.YAMLError, ValueError) as exc:  # a scalar that cannot be built (2026-13-45)
        raise Invalid(f"{source}: not valid YAML: {exc}") from exc
    return YamlDoc(data, source, walk.lines)


def files(shipped: Path, *extra: Path) -> list[Path]:
    """The ``*.yaml`` files of a shipped folder, then of each extra file or folder given, in
    that order (readers let later files win by key). Extra paths that do not exist are skipped.
    """
    found = sorted(shipped.glob("*.yaml"))
    for path in extra:
        if path.is_dir():
            found.extend(sorted(path.glob("*.yaml")))
        elif path.exists():
            found.append(path)
    return found


def read(path: Path) -> YamlDoc:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from exc
    return parse(text, str(path))


def validate(doc: YamlDoc, model: type[M]) -> M:
    """Validate ``doc`` against ``model``; every problem is reported with its line and path."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            problems.append(f"{doc.where(loc)}: {err['msg']}")
        raise Invalid("; ".join(problems)) from exc
