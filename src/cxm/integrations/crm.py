"""CRM trait sync from a drop folder: a CRM (or any export job) writes CSV files of customers
into a folder; cxm picks each up, sets the traits it names on the customers it identifies, and
moves it aside with its result, so a nightly export keeps segments, plans and owners current.

Each row becomes an ``identify`` interaction (``source_system: crm``) carrying its traits, so
traits follow the same rules as traits from Segment: identity resolution joins the row to the
customer by every identifier column (email, phone, user_id, crm_id or any ``*_id``), the newest
value of a trait wins (by the row's ``updated_at`` when the file has one, else the file's
modification time), and a re-dropped file stores nothing twice (event ids hash the row).

A file moves to ``processed/`` when it was read, with ``<stem>.result.txt`` (the counts) and
``<stem>.rejects.csv`` when rows were refused; a file that cannot be read at all moves to
``failed/`` with the reason, so one bad file never blocks the next.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from cxm.config import Settings, load_settings
from cxm.errors import Invalid
from cxm.interactions import importer as interactions_import
from cxm.interactions.importer import is_identifier

TIME_COLUMN = "updated_at"


@dataclass
class SyncResult:
    file: str
    rows: int
    stored: int
    duplicates: int
    rejected: int
    traits: list[str]

    def line(self) -> str:
        return (
            f"{self.file}: {self.rows} rows, {self.stored} stored, {self.duplicates} unchanged, "
            f"{self.rejected} rejected; traits: {', '.join(self.traits) or 'none'}"
        )


def _at(raw: str | None, fallback: dt.datetime) -> str:
    if raw:
        try:
            value = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"'{TIME_COLUMN}' {raw!r} is not an ISO 8601 time") from None
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    else:
        value = fallback
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def sync_file(engine: Engine, path: Path, *, delimiter: str = ",") -> SyncResult:
    """Set the traits of one CRM CSV file; returns its counts. Rejected rows (no identifier, a
    bad time) go to ``<stem>.rejects.csv`` beside the file.

    Raises Invalid when the file cannot be read or has no identifier column.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Invalid(f"cannot read {path.name}: {exc}") from exc
    ids = [c for c in header if is_identifier(c)]
    if not ids:
        raise Invalid(
            f"{path.name}: no identifier column; name one email, phone, user_id or *_id "
            f"(the columns are {', '.join(header) or 'none'})"
        )
    traits = [c for c in header if c not in ids and c != TIME_COLUMN]
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    bad: list[tuple[int, str]] = []
    with tempfile.TemporaryDirectory(prefix="cxm-crm-") as tmp:
        events = Path(tmp) / "identify.jsonl"
        with events.open("w", encoding="utf-8") as out:
            for line, row in enumerate(rows, start=2):
                who = {c: (row.get(c) or "").strip() for c in ids if (row.get(c) or "").strip()}
                if not who:
                    bad.append((line, "no identifier in any of " + ", ".join(ids)))
                    continue
                try:
                    when = _at(row.get(TIME_COLUMN), mtime)
                except Invalid as exc:
                    bad.append((line, str(exc)))
                    continue
                values = {t: (row.get(t) or "").strip() or None for t in traits}
                digest = hashlib.sha256(
                    json.dumps([who, values, when], sort_keys=True).encode()
                ).hexdigest()[:32]
                props = {"traits": values, "source_system": "crm"}
                event = {
                    "event_id": f"crm:{digest}", "type": "identify", "name": "crm_sync",
                    "timestamp": when, "channel": "crm", "properties": props,
                } | who  # fmt: skip
                out.write(json.dumps(event) + "\n")
        summary = (
            interactions_import.import_file(engine, events)
            if events.stat().st_size
            else interactions_import.ImportSummary()
        )
        if summary.rejects_file:
            with summary.rejects_file.open(newline="", encoding="utf-8") as handle:
                bad += [(0, r.get("reason", "")) for r in csv.DictReader(handle)]
    target = path.with_name(f"{path.name.split('.')[0]}.rejects.csv")
    if bad:
        with target.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows(bad)
    return SyncResult(path.name, len(rows), summary.stored, summary.duplicates, len(bad), traits)


def drop_folder(settings: Settings) -> Path:
    return Path(settings.crm_drop_dir) if settings.crm_drop_dir else settings.data_dir / "crm-drop"


def sync_folder(engine: Engine, settings: Settings | None = None) -> list[SyncResult]:
    """Sync every ``*.csv`` waiting in the drop folder, oldest first; each file then moves to
    ``processed/`` (or ``failed/`` with ``<stem>.error.txt``)."""
    settings = settings or load_settings()
    folder = drop_folder(settings)
    if not folder.is_dir():
        return []
    results = []
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    for path in sorted(folder.glob("*.csv"), key=lambda p: (p.stat().st_mtime, p.name)):
        if path.name.endswith(".rejects.csv"):
            continue
        stem = path.name.split(".")[0]
        try:
            result = sync_file(engine, path)
        except Invalid as exc:
            failed = folder / "failed"
            failed.mkdir(exist_ok=True)
            (failed / f"{stamp}-{stem}.error.txt").write_text(str(exc) + "\n", encoding="utf-8")
            shutil.move(str(path), failed / f"{stamp}-{path.name}")
            continue
        done = folder / "processed"
        done.mkdir(exist_ok=True)
        shutil.move(str(path), done / f"{stamp}-{path.name}")
        rejects = path.with_name(f"{stem}.rejects.csv")
        if rejects.exists():
            shutil.move(str(rejects), done / f"{stamp}-{rejects.name}")
        (done / f"{stamp}-{stem}.result.txt").write_text(result.line() + "\n", encoding="utf-8")
        results.append(result)
    return results
