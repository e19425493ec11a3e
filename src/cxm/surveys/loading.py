"""Load a folder of survey files and response exports (the demo company's, or a migration's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from cxm.surveys import importer, service
from cxm.yamldoc import read


def load_demo_surveys(
    engine: Engine, folder: Path, say: Callable[[str], None] | None = None
) -> dict[str, str]:
    """Apply ``surveys/*.yaml`` (and the shipped templates not among them), then import
    ``responses.csv`` and ``pulse.csv``; returns one summary line per step."""
    say = say or (lambda _msg: None)
    steps: dict[str, str] = {}
    say("surveys")
    with engine.begin() as conn:
        results = [service.apply_definition(conn, read(p)) for p in sorted(
            (folder / "surveys").glob("*.yaml"))]  # fmt: skip
        given = {r.key for r in results}
        results += [
            service.apply_definition(conn, read(p))
            for p in service.template_paths()
            if p.stem not in given
        ]
    steps["surveys"] = f"{len(results)} surveys: " + ", ".join(
        f"{r.key} v{r.version}" for r in results
    )
    with engine.connect() as conn:
        kinds = {s.key: s.kind for s in service.list_surveys(conn)}
    # The pulse file has no survey column: it answers the demo's employee survey.
    pulse = next((k for k in sorted(given) if kinds.get(k) == "employee"), "employee_pulse")
    for name, survey in (("responses", None), ("pulse", pulse)):
        path = folder / f"{name}.csv"
        if not path.exists():
            continue
        say(name)
        with engine.begin() as conn:
            summary = importer.import_responses(conn, path, survey=survey)
        line = f"{summary.imported} imported, {summary.already_present} already present"
        if summary.rejected:
            line += f", {summary.rejected} rejected (see {summary.rejects_file})"
        steps[name] = line
    return steps
