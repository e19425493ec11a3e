"""Commands run inside ``cxm serve`` for the CLI of the same machine, while the server owns the
embedded store (``POST /api/v1/commands``).

The command runs in the server's process, in the request's worker thread, one at a time: its
``engine()`` is the server's own, what it prints is caught for that thread alone (the server's
other threads print where they always did), relative paths are taken from the caller's folder,
and its prompts get the answers the caller typed. It exits as it would have in the caller's
process, with the same code and the same words.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, get_args

import typer
from typer._click import termui  # where typer.prompt and typer.confirm find their input

from cxm import console as cli_console
from cxm.errors import CxmError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_one_at_a_time = threading.Lock()
_here = threading.local()


def _text() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


@dataclass
class _Run:
    """What one forwarded command reads and writes."""

    stdin: io.TextIOWrapper
    answers: list[str]
    stdout: io.TextIOWrapper = field(default_factory=_text)
    stderr: io.TextIOWrapper = field(default_factory=_text)
    last: tuple[io.TextIOWrapper, int] | None = None  # where the latest write began

    def write(self, stream: io.TextIOWrapper, text: str) -> int:
        self.last = (stream, stream.tell())
        return stream.write(text)

    def unwrite(self) -> None:
        """Take back the latest write (a prompt's text the caller has shown already)."""
        if self.last is not None:
            stream, start = self.last
            stream.seek(start)
            stream.truncate()
            self.last = None

    def printed(self, stream: io.TextIOWrapper) -> str:
        stream.flush()
        buffer = stream.buffer
        assert isinstance(buffer, io.BytesIO)
        return buffer.getvalue().decode("utf-8", "replace")


def _current() -> _Run | None:
    run: _Run | None = getattr(_here, "run", None)
    return run


class _PerThread:
    """Stands for ``sys.stdout``, ``sys.stderr`` or ``sys.stdin``: the forwarded command's own
    stream in the thread that runs it, the process's stream in every other thread."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, name: str, process: Any) -> None:
        self._name = name
        self._process = process

    def _stream(self) -> Any:
        run = _current()
        return getattr(run, self._name) if run is not None else self._process

    def write(self, text: str) -> int:
        run = _current()
        if run is not None and self._name != "stdin":
            return run.write(getattr(run, self._name), text)
        return int(self._process.write(text))

    def flush(self) -> None:
        self._stream().flush()

    def isatty(self) -> bool:
        return bool(self._stream().isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream(), name)


def _server_err() -> Any:
    """The server's own stderr, whichever thread asks."""
    err = sys.stderr
    return err._process if isinstance(err, _PerThread) else err


def _prompt(asked: Any) -> Any:
    """A prompt that, in a forwarded command, takes the caller's answers in order, then lines
    of its piped input; in any other thread, asks as before."""

    def answer(prompt: str) -> str:
        run = _current()
        if run is None:
            return str(asked(prompt))
        if run.answers:
            run.unwrite()  # the prompt's text: the caller has shown it already
            return run.answers.pop(0)
        run.write(run.stdout, prompt)
        line = run.stdin.readline()
        if not line:
            raise EOFError  # click: "Aborted!", exit 1, as with input that ran out
        return line.removesuffix("\n")

    return answer


def install(eng: Engine) -> None:
    """In the server's process: commands use ``eng``; streams and prompts per thread (once)."""
    cli_console.serve_commands_with(eng)
    for name in ("stdout", "stderr", "stdin"):
        if not isinstance(getattr(sys, name), _PerThread):
            setattr(sys, name, _PerThread(name, getattr(sys, name)))
    for name in ("visible_prompt_func", "hidden_prompt_func"):
        asked = getattr(termui, name)
        if not getattr(asked, "per_thread", False):
            answer = _prompt(asked)
            answer.per_thread = True
            setattr(termui, name, answer)


def _names_a_path(annotation: Any) -> bool:
    """A path or file parameter (``Path``, ``Path | None``, ``list[Path]``, ``typer.FileText``)."""
    if isinstance(annotation, type):
        return issubclass(annotation, (PurePath, io.IOBase))
    return any(_names_a_path(a) for a in get_args(annotation))


def _from_folder(value: Any, folder: str, typed: dict[str, str]) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(_from_folder(v, folder, typed) for v in value)
    relative = isinstance(value, (str, PurePath)) and str(value) not in ("-", "")
    if relative and not os.path.isabs(os.path.expanduser(value)):
        full = os.path.join(folder, value)
        typed[full] = str(value)
        return full
    return value


def _paths_from(command: Any, folder: str, typed: dict[str, str]) -> None:
    """Every path or file parameter of ``command`` and its subcommands takes a relative path
    from ``folder``; ``typed`` collects each full path with the path as typed."""
    for param in command.params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or not _names_a_path(descriptor.annotation):
            continue
        process = param.process_value

        def process_value(ctx: Any, value: Any, process: Any = process) -> Any:
            return process(ctx, _from_folder(value, folder, typed))

        param.process_value = process_value
    for sub in getattr(command, "commands", {}).values():
        _paths_from(sub, folder, typed)


def _as_typed(text: str, typed: dict[str, str]) -> str:
    """What a command printed, naming the paths it was given as they were typed (as it does
    when it runs in the caller's folder)."""
    for full in sorted(typed, key=len, reverse=True):
        text = text.replace(full, typed[full])
    return text


def _exit_code(code: Any, run: _Run) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    run.stderr.write(f"{code}\n")  # as Python prints sys.exit("message")
    return 1


def run(
    argv: list[str],
    cwd: str,
    stdin: str | None = None,
    answers: list[str] | None = None,
    width: int | None = None,
    color_system: str | None = None,
) -> dict[str, Any]:
    """Run ``cxm ARGV`` as if in ``cwd``; its exit code and what it printed on each stream.

    Refuses (``CxmError``, 400) the commands that never run in a server. A command that fails
    with an exception exits 1 with its message, as it would have without a server.
    """
    from rich.console import COLOR_SYSTEMS

    from cxm.cli.main import LAZY, app

    if not argv or argv[0] not in LAZY or argv[0] in cli_console.NOT_FORWARDED:
        name = argv[0] if argv else ""
        raise CxmError(
            f"'cxm {name}' does not run in the server: stop 'cxm serve' to run it"
            if name in cli_console.NOT_FORWARDED
            else f"'{name}' is not a cxm command the server runs: see 'cxm --help'"
        )
    if not os.path.isabs(cwd):
        raise CxmError(f"cwd '{cwd}' is not an absolute folder")
    this = _Run(_text(), list(answers or []))
    typed: dict[str, str] = {}
    this.stdin.write(stdin or "")
    this.stdin.seek(0)
    shared = cli_console.console
    with _one_at_a_time:
        # The caller's width for every rich console (they read COLUMNS as they print), and its
        # colours for the shared one; only forwarded commands print with rich in the server.
        kept = (os.environ.get("COLUMNS"), shared._color_system)
        if width:
            os.environ["COLUMNS"] = str(width)
        shared._color_system = COLOR_SYSTEMS.get(color_system or "")
        _here.run = this
        try:
            try:
                root: Any = typer.main.get_command(app)
                _paths_from(root.get_command(None, argv[0]), cwd, typed)
                root.main(args=argv, prog_name="cxm", color=color_system is not None)
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc.code, this)
            except Exception as exc:
                # The trace in the server's log; the caller gets one line.
                print(f"cxm {' '.join(argv)} failed:", traceback.format_exc(), file=_server_err())
                first = (str(exc).strip().splitlines() or [""])[0]
                this.stderr.write(f"error: {type(exc).__name__}: {first}\n")
                code = cli_console.EXIT_FAILURE
        finally:
            _here.run = None
            if kept[0] is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = kept[0]
            shared._color_system = kept[1]
    return {"exit_code": code, "stdout": _as_typed(this.printed(this.stdout), typed),
            "stderr": _as_typed(this.printed(this.stderr), typed)}  # fmt: skip
