"""Load the YAML files users write, keeping line numbers so every error points at its line."""

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


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], build: SafeConstructor) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = build.construct_object(key_node, deep=True)
            out[key] = _walk(value_node, (*path, key), lines, build)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines, build) for i, item in enumerate(node.value)]
    return build.construct_object(node, deep=True)


def parse(text: str, source: str = "<input>") -> YamlDoc:
    """Parse YAML (JSON is YAML too) with line numbers; syntax errors raise Invalid."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise Invalid(f"{source}{where}: not valid YAML: {problem}") from exc
    if node is None:
        raise Invalid(f"{source}: the file is empty")
    lines: dict[Path_, int] = {}
    return YamlDoc(_walk(node, (), lines, SafeConstructor()), source, lines)


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
