"""Shared by every command: settings, the engine, printing lists, and one exit-code convention.

Exit codes: 0 ok; 1 a failure of the system (the store cannot be reached or is in use, a server
did not answer); 2 bad input (an unknown id, a malformed file or option). Click's own usage
errors already exit 2. This module imports only light libraries: ``cxm --help`` must stay fast,
so the store (SQLAlchemy, Ibis) is imported when a command first asks for the engine.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from cxm.config import Settings, load_settings
from cxm.errors import CxmError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
FORMATS = ("table", "csv", "json")
WRAP_MIN = 12  # the narrowest a wrapping column (a title) gets, in characters
# The root's own commands start processes, migrate or check the installation: they never run
# inside a server (every domain command does, when the server owns the embedded store).
NOT_FORWARDED = ("init", "serve", "worker", "doctor")

console = Console()
# In the process of 'cxm serve', the engine every forwarded command uses (see ``engine``).
_served_engine: Engine | None = None
# What this process was asked to run, and the answers given to its prompts, so that the same
# command can be run again by the server that owns the store.
_invoked: list[str] | None = None
_answers: list[str] = []
_recording = False


def settings() -> Settings:
    return load_settings()


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """One line on stderr, then exit: ``code`` 1 for a failure of the system, 2 for bad input."""
    # Plain echo, not rich: an error message must never be cropped or re-wrapped.
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code)


def bad_input(message: str) -> NoReturn:
    """Refuse what the user typed (exit 2) with a message saying what to type instead."""
    fail(message, EXIT_BAD_INPUT)


@contextmanager
def errors() -> Iterator[None]:
    """Turn domain errors into a clear message and exit status 2, without a traceback."""
    try:
        yield
    except CxmError as exc:
        fail(str(exc), EXIT_BAD_INPUT)


def shown_url(url: Any) -> str:
    """A database URL as it may be printed: the password hidden."""
    from sqlalchemy.engine import make_url

    return str(make_url(str(url)).render_as_string(hide_password=True))


def store_unreachable(url: Any, reason: str) -> NoReturn:
    """One line naming the store (password hidden), why it failed and what to do; exit 1."""
    where = shown_url(url)
    first = reason.strip().splitlines()[0] if reason.strip() else "no answer"
    first = first.removeprefix("connection failed: ")
    lowered = first.lower()
    if "lock" in lowered:
        fail(f"cannot open the store {where}: {locked_hint()}")
    if "does not exist" in lowered and "database" in lowered:
        name = where.rsplit("/", 1)[-1].split("?")[0]
        hint = f"create it (createdb {name}) or point CXM_DATABASE_URL at one, then 'cxm init'"
    elif where.startswith("duckdb"):
        hint = "check that its folder is writable, or set CXM_DATA_DIR or CXM_DATABASE_URL"
    else:
        hint = "check that the database server runs and that CXM_DATABASE_URL is right"
    fail(f"cannot open the store {where}: {first}; {hint}")


def locked_hint() -> str:
    """What to do when another process owns the embedded store, naming a running server."""
    server = running_server(settings().data_dir)
    at = f" at {server.url} (pid {server.pid})" if server else ""
    return (
        f"it is in use by another process, usually a running 'cxm serve'{at}: stop the server "
        "to run this command, or make the change through the server's API or web pages"
    )


def engine(*, migrated: bool = True) -> Engine:
    """The store's engine; refuses to run against a store that ``cxm init`` has not prepared.

    When a running ``cxm serve`` holds the embedded store, the whole command is run again by
    that server (``forward``) and this process exits with its exit code. Exits 1 with one line
    when the store cannot be reached (a missing PostgreSQL database, a stopped server).
    Inside the server, the server's own engine: forwarded commands share it.
    """
    if _served_engine is not None:
        return _served_engine
    from sqlalchemy.exc import DBAPIError

    from cxm.store import create_engine, current_revision, head_revision

    url = settings().database_url
    try:
        eng = create_engine(url)
        revision = current_revision(eng)
    except DBAPIError as exc:
        if "lock" in str(exc.orig).lower():
            forward_to_owner()
        store_unreachable(url, str(exc.orig))
    except OSError as exc:
        store_unreachable(url, str(exc))
    if migrated and revision != head_revision():
        fail("the store is not initialised or is out of date: run 'cxm init' first")
    return eng


def server_owning_store() -> RunningServer | None:
    """The running ``cxm serve`` when it holds the embedded store, so writes go through its API;
    None when this process can open the store itself."""
    from sqlalchemy.exc import DBAPIError

    from cxm.store import create_engine, current_revision

    conf = settings()
    if _served_engine is not None or not conf.database_url.startswith("duckdb"):
        return None
    try:
        eng = create_engine(conf.database_url)
        current_revision(eng)
    except DBAPIError as exc:
        if "lock" in str(exc.orig).lower():
            return running_server(conf.data_dir)
        return None
    eng.dispose()
    return None


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    if fmt not in allowed:
        bad_input(f"--format '{fmt}' is unknown: use {', '.join(allowed)}")
    return fmt


def check_page(limit: int, offset: int) -> None:
    if limit < 1:
        bad_input(f"--limit {limit}: give 1 or more")
    if offset < 0:
        bad_input(f"--offset {offset}: give 0 or more")


# Words of a column key that a heading writes as the field does (``user_id`` → "User ID").
HEADING_WORDS = {"id": "ID", "ids": "IDs", "nps": "NPS", "csat": "CSAT", "ces": "CES",
                 "enps": "eNPS", "ex": "EX", "cx": "CX", "sla": "SLA", "crm": "CRM", "url": "URL",
                 "utc": "UTC", "ci": "CI", "api": "API", "n": "n", "p": "p"}  # fmt: skip


def column_heading(key: str) -> str:
    """A table column's key as its heading: ``rework_cases`` → "Rework cases", ``user_id`` →
    "User ID", ``n`` stays "n"; a key already in words ("95% CI") keeps its spelling."""
    words = key.replace("_", " ").split(" ")
    if words[0].lower() not in HEADING_WORDS:
        words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(HEADING_WORDS.get(w.lower(), w) for w in words)


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    *,
    whole: Sequence[str] = ("id",),
    caption: str | None = None,
    headings: Mapping[str, str] | None = None,
    wrap: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> None:
    """A table on stdout, then ``caption`` as a line.

    ``headings`` maps a column's key to the heading a person reads (``column_heading`` of the
    key when absent). The
    ``whole`` columns (ids) are never cropped, so they paste back; the ``wrap`` columns (titles)
    wrap at word boundaries into the width left over, and every other column then keeps its
    heading and values whole (without ``wrap``, the other columns share the width as they fit).
    When the terminal is too narrow for that, the ``optional`` columns are left out, first named
    first, and a line above the caption names them.
    """
    from rich.table import Table

    def heading(col: str) -> str:
        return (headings or {}).get(col) or column_heading(col)

    def cell(row: dict[str, Any], col: str) -> str:
        return "" if row.get(col) is None else str(row.get(col))

    def natural(col: str) -> int:
        # Table borders and padding take 3 characters a column.
        if col in wrap:
            return max(WRAP_MIN, *(len(w) for w in heading(col).split())) + 3
        return max([len(heading(col)), *(len(cell(r, col)) for r in rows)]) + 3

    shown = list(columns)
    left_out: list[str] = []
    for col in optional:
        if 1 + sum(natural(c) for c in shown) <= console.width:
            break
        if col in shown:
            shown.remove(col)
            left_out.append(col)
    table = Table(title=title, header_style="bold")
    for col in shown:
        if col in wrap:
            table.add_column(heading(col), overflow="fold", ratio=1, min_width=natural(col) - 3)
        elif wrap or col in whole:
            width = natural(col) - 3
            table.add_column(heading(col), no_wrap=True, min_width=width, overflow="ignore")
        else:
            table.add_column(heading(col))
    for row in rows:
        table.add_row(*(cell(row, c) for c in shown))
    console.print(table)
    if left_out:
        names = ", ".join(heading(c) for c in left_out)
        typer.echo(f"too narrow for: {names} (--format csv has them)")
    if caption:
        typer.echo(caption)  # plain, so a narrow table never wraps the next page's option


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def print_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """RFC 4180 CSV with a header row; values as the table shows them, None as empty."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    typer.echo(out.getvalue(), nl=False)


def page_caption(shown: int, offset: int, total: int, noun: str) -> str:
    """'1-50 of 260 cases; next: --offset 50', or 'all 12 departments'."""
    if shown == total and offset == 0:
        return f"all {total} {noun}"
    if shown == 0:
        return f"none of {total} {noun} at --offset {offset}"
    line = f"{offset + 1}-{offset + shown} of {total} {noun}"
    if offset + shown < total:
        line += f"; next: --offset {offset + shown}"
    return line


def print_list(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    title: str,
    *,
    fmt: str,
    total: int,
    offset: int = 0,
    noun: str | None = None,
    json_rows: Sequence[Any] | None = None,
    whole: Sequence[str] = ("id",),
    headings: Mapping[str, str] | None = None,
    wrap: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> None:
    """One page of a list: a table with its total and the next page's option, CSV, or JSON.

    CSV and JSON carry only the page's rows (JSON: ``json_rows`` when given, else ``rows``), so
    they stay machine-readable: CSV's header row is the column keys. The table's caption gives
    the total; ``headings``, ``wrap`` and ``optional`` shape the table as ``print_table`` says.
    """
    if fmt == "json":
        print_json(list(json_rows if json_rows is not None else rows))
    elif fmt == "csv":
        print_csv(rows, columns)
    else:
        caption = page_caption(len(rows), offset, total, noun or title.lower())
        print_table(rows, columns, title, whole=whole, caption=caption, headings=headings,
                    wrap=wrap, optional=optional)  # fmt: skip


def page(rows: Sequence[Any], limit: int, offset: int) -> list[Any]:
    return list(rows[offset : offset + limit])


# ---- a running server, for commands that write while it owns the store ----

SERVER_FILE = "server.json"


@dataclass(frozen=True)
class RunningServer:
    """What ``cxm serve`` leaves in the data dir (mode 0600) while it runs: its address and a
    local admin API key, so the CLI can write through the API while the server owns the store."""

    url: str
    pid: int
    token: str
    key_id: str


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def server_file(data_dir: Path) -> RunningServer | None:
    """What the discovery file says, whether or not its server still runs; None if absent."""
    try:
        return RunningServer(**json.loads((data_dir / SERVER_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running_server(data_dir: Path) -> RunningServer | None:
    """The server that runs on this data dir, or None (no file, unreadable, or its process gone)."""
    server = server_file(data_dir)
    return server if server is not None and _pid_alive(server.pid) else None


def write_running_server(data_dir: Path, server: RunningServer) -> Path:
    """Write the discovery file readable by the owner only (it holds an admin key)."""
    path = data_dir / SERVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(server), out)
    return path


def call_server(
    server: RunningServer, method: str, path: str, body: Any = None, *, yaml_text: str | None = None
) -> Any:
    """Call the running server's REST API with its local admin key; the answer's JSON.

    ``body`` goes as JSON, ``yaml_text`` as a YAML document. A 4xx answer is bad input (exit 2,
    the server's message); no answer or a 5xx exits 1.
    """
    import urllib.error
    import urllib.request

    data: bytes | None = None
    kind = "application/json"
    if yaml_text is not None:
        data, kind = yaml_text.encode(), "application/yaml"
    elif body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(
        server.url.rstrip("/") + "/api/v1" + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": kind},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        message = f"the server at {server.url} refused: {detail}"
        fail(message, EXIT_BAD_INPUT if 400 <= exc.code < 500 else EXIT_FAILURE)
    except OSError as exc:
        fail(f"the server at {server.url} did not answer ({exc}); is 'cxm serve' still running?")


# ---- running a whole command in the server that owns the store ----


def serve_commands_with(eng: Engine | None) -> None:
    """In ``cxm serve``: every command run in this process uses ``eng`` (None: its own)."""
    global _served_engine
    _served_engine = eng


def invoked(args: Sequence[str] | None, *, done: bool = False) -> None:
    """Remember what this process was asked to run (``args``, else ``sys.argv``), and record
    the answers typed at its prompts from now on, so that a forwarded command gets them;
    ``done``: the command is over, forget it."""
    import sys

    from typer._click import termui  # where typer.prompt and typer.confirm find their input

    global _invoked, _recording
    _answers.clear()
    _invoked = None if done else list(args) if args is not None else sys.argv[1:]
    if _recording:
        return
    _recording = True
    for name in ("visible_prompt_func", "hidden_prompt_func"):
        asked = getattr(termui, name)

        def recorded(prompt: str, asked: Any = asked) -> str:
            answer = str(asked(prompt))
            _answers.append(answer)
            return answer

        setattr(termui, name, recorded)


def forward_to_owner() -> None:
    """When a running ``cxm serve`` owns the embedded store, run this command there and exit
    with its exit code; return when there is no such server (or this command never runs in
    one: the caller then says the store is in use)."""
    args = _invoked
    if _served_engine is not None or not args or args[0] in NOT_FORWARDED:
        return
    server = running_server(settings().data_dir)
    if server is not None:
        raise SystemExit(forward(server, args))


def forward(server: RunningServer, args: Sequence[str]) -> int:
    """Run ``cxm ARGS`` in ``server`` (``POST /api/v1/commands``) with this process's folder,
    answers to prompts, piped input (when an argument is ``-``) and terminal width; print what
    it printed, on the same streams, and return its exit code.

    The server refusing the command exits 2 when it is the command's fault, 1 otherwise; a
    server that does not answer exits 1, each with one line.
    """
    import sys
    import urllib.error
    import urllib.request

    stdin = None
    if "-" in args and sys.stdin is not None and not sys.stdin.isatty():
        stdin = sys.stdin.read()
    body = {
        "argv": list(args),
        "cwd": os.getcwd(),
        "stdin": stdin,
        "answers": list(_answers),
        "width": console.width,
        "color_system": console.color_system,
    }
    request = urllib.request.Request(
        server.url.rstrip("/") + "/api/v1/commands",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    try:
        # No timeout: a long command (an import, training) answers when it is done.
        with urllib.request.urlopen(request) as answer:
            ran = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        # 400: a command the server does not run (cxm init); else the server's own trouble.
        code = EXIT_BAD_INPUT if exc.code == 400 else EXIT_FAILURE
        fail(f"the server at {server.url} did not run this command: {detail}", code)
    except (OSError, ValueError) as exc:
        fail(f"the server at {server.url} did not answer ({exc}); is 'cxm serve' still running?")
    for stream, text in ((sys.stdout, ran["stdout"]), (sys.stderr, ran["stderr"])):
        stream.write(text)
        stream.flush()
    return int(ran["exit_code"])
