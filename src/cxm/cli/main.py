"""The root ``cxm`` command: each domain's group is imported only when it is invoked."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from cxm.console import (
    RunningServer,
    bad_input,
    console,
    engine,
    invoked,
    server_file,
    settings,
    write_running_server,
)
from cxm.errors import CxmError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def _group(module: str, attr: str) -> Callable[[], Any]:
    def load() -> Any:
        return getattr(importlib.import_module(module), attr)

    return load


def _import_group() -> typer.Typer:
    from cxm.employees.cli import import_employees, import_partner_contacts
    from cxm.integrations.cli import import_tickets, import_traits
    from cxm.interactions.cli import import_interactions
    from cxm.surveys.cli import import_responses

    group = typer.Typer(help=LAZY["import"][0], no_args_is_help=True)
    group.command("interactions")(import_interactions)
    group.command("responses")(import_responses)
    group.command("employees")(import_employees)
    group.command("partner-contacts")(import_partner_contacts)
    group.command("tickets")(import_tickets)
    group.command("traits")(import_traits)
    return group


def _privacy_group() -> typer.Typer:
    from cxm.customer360.cli import privacy_app
    from cxm.privacy.cli import erase

    if not any(c.name == "erase" for c in privacy_app.registered_commands):
        privacy_app.command("erase")(erase)
    return privacy_app


def _export_command() -> Any:
    from cxm.metrics.cli import export

    single = typer.Typer()
    single.command("export")(export)
    return typer.main.get_command(single)


def _metrics_group() -> typer.Typer:
    from cxm.employees.cli import enps
    from cxm.metrics.cli import app as metrics_app

    # eNPS by group is computed where employees' teams are known, under the confidentiality
    # rule: 'cxm metrics enps --by team' is 'cxm employees enps --by team'.
    if not any(c.name == "enps" for c in metrics_app.registered_commands):
        metrics_app.command("enps", help="eNPS per group (same as 'cxm employees enps').")(enps)
    return metrics_app


# name: (the help line 'cxm --help' shows, a loader of the Typer group or click command).
# The help lines repeat each group's own help (a test keeps them equal) so that listing the
# commands imports none of them.
LAZY: dict[str, tuple[str, Callable[[], Any]]] = {
    "org": ("Departments, teams, touchpoints and who owns them.", _group("cxm.org.cli", "app")),
    "keys": ("API keys (shown once, stored hashed).", _group("cxm.org.cli", "keys_app")),
    "users": ("Users who sign in to the web app.", _group("cxm.org.cli", "users_app")),
    "demo": ("A realistic demo company with known ground truth.", _group("cxm.demo.cli", "app")),
    "import": (
        "Import files: interactions, survey responses, employees, helpdesk tickets, CRM traits.",
        _import_group,
    ),
    "interactions": ("The interaction log.", _group("cxm.interactions.cli", "app")),
    "customers": (
        "Customer profiles (360) and identity resolution.",
        _group("cxm.customer360.cli", "customers_app"),
    ),
    "privacy": ("Privacy requests: export or erase one person.", _privacy_group),
    "surveys": (
        "Surveys: definitions, links, contact rules, funnel.",
        _group("cxm.surveys.cli", "app"),
    ),
    "metrics": (
        "Company-wide CX metrics: 'cxm metrics list', 'cxm metrics NAME --by department'.",
        _metrics_group,
    ),
    "employees": (
        "Employees: directory, pulse results (eNPS), team EX beside CX.",
        _group("cxm.employees.cli", "app"),
    ),
    "text": ("Text analytics: sentiment, themes, taxonomies.", _group("cxm.text.cli", "app")),
    "cases": (
        "Closed-loop cases: list, show, assign, resolve.",
        _group("cxm.actions.cli", "cases_app"),
    ),
    "rules": (
        "Rules that open cases: apply a file, run them now.",
        _group("cxm.actions.cli", "rules_app"),
    ),
    "reports": (
        "Reports that come to people: weekly department digests.",
        _group("cxm.actions.cli", "reports_app"),
    ),
    "journeys": (
        "Journeys mined from the interaction log: variants, maps, friction.",
        _group("cxm.journeys.cli", "app"),
    ),
    "insights": (
        "Experience signals and department attribution: 'cxm insights attribution'.",
        _group("cxm.insights.cli", "app"),
    ),
    "export": (
        "Write or refresh the store's facts as a Parquet lake (for 'cxm metrics --engine spark').",
        _export_command,
    ),
}


class _Listed(TyperCommand):
    """Stands for a lazy command in a help listing, without importing it."""


def load_command(name: str) -> Any:
    """The real command behind a lazy name (imports its domain's CLI module)."""
    loaded = LAZY[name][1]()
    command = typer.main.get_group(loaded) if isinstance(loaded, typer.Typer) else loaded
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A group whose domain commands are imported when invoked, not when the CLI starts."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        for name, (help_line, _) in LAZY.items():
            self.commands.setdefault(name, _Listed(name, help=help_line))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Listed) and not self._listing:
            command = self.commands[cmd_name] = load_command(cmd_name)
        return command

    def main(self, args: Any = None, *rest: Any, **extra: Any) -> Any:
        # Kept, with the answers typed at prompts, for a command that a running server runs.
        invoked(args)
        try:
            return super().main(args, *rest, **extra)
        finally:
            invoked(None, done=True)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    cls=LazyGroup,
    help="cxm: Customer Experience Management. Start with 'cxm init', then 'cxm serve'.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def init() -> None:
    """Create or migrate the store (CXM_DATABASE_URL) and seed the default departments."""
    from cxm.org import service as org
    from cxm.store import upgrade

    eng = engine(migrated=False)
    upgrade(eng)
    with eng.begin() as conn:
        seeded = org.seed_defaults(conn)
    console.print(f"store ready: {eng.url.render_as_string(hide_password=True)}")
    if seeded:
        console.print("seeded the default departments")


@app.command()
def doctor() -> None:
    """Check the installation: data dir, store and migrations, mail server, Java, Chromium.

    Exits 0 when nothing fails (warnings only switch a feature off), 1 when something does.
    """
    from cxm.console import running_server
    from cxm.web import health

    conf = settings()
    checks = [health.data_dir_check(conf)]
    server = running_server(conf.data_dir) if conf.database_url.startswith("duckdb") else None
    if server is not None:
        # The running server owns the embedded store: ask it instead of opening the file.
        checks.append(_server_check(server.url))
    else:
        checks += health.store_checks(None, conf.database_url)
    checks += [health.password_check(), health.mail_check(conf), *health.program_checks()]
    marks = {"ok": "[green]ok[/]  ", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
    for c in checks:
        console.print(f"{marks[c.level]} {c.name}: {c.detail}", highlight=False, soft_wrap=True)
        if c.fix and c.level != "ok":
            console.print(f"       fix: {c.fix}", highlight=False, soft_wrap=True)
    failed = [c for c in checks if c.level == "fail"]
    if failed:
        console.print(f"{len(failed)} check(s) failed", highlight=False)
        raise typer.Exit(1)


def _server_check(url: str) -> Any:
    import httpx

    from cxm.web.health import Check

    try:
        answer = httpx.get(f"{url}/healthz", timeout=5)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        return Check("store", "fail", f"the server at {url} owns the store but does not answer "
                     f"({exc})", "restart it: cxm serve")  # fmt: skip
    return Check("store", "ok", f"owned by the running server at {url}, which answers")


SERVER_KEY_NAME = "cxm serve: local CLI"


def _announce(eng: Engine, host: str, port: int) -> tuple[Path, RunningServer] | None:
    """On an embedded store, leave DATA_DIR/server.json (0600) with this server's address and a
    fresh local admin key, so that the CLI runs its commands here; the file's path and what it
    holds.

    A file left by a server that did not stop cleanly is replaced and its key revoked (its
    process cannot hold the store: this one just opened it).
    """
    from cxm.org import auth

    if eng.url.get_backend_name() != "duckdb":
        return None  # the CLI opens a shared store itself
    data_dir = settings().data_dir
    stale = server_file(data_dir)
    with eng.begin() as conn:
        if stale is not None:
            with contextlib.suppress(CxmError):
                auth.revoke_api_key(conn, stale.key_id)
        token = auth.create_api_key(conn, "admin", name=SERVER_KEY_NAME)
        prefix = token.removeprefix(auth.KEY_PREFIX).split("_")[0]
        key_id = next(str(k["id"]) for k in auth.list_api_keys(conn) if k["prefix"] == prefix)
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    server = RunningServer(f"http://{reach}:{port}", os.getpid(), token, key_id)
    return write_running_server(data_dir, server), server


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    workers: int = typer.Option(
        1, "--workers", min=1, help="server processes (PostgreSQL only when more than one)"
    ),
    jobs: bool = typer.Option(
        True, "--jobs/--no-jobs", help="also run jobs and periodic scans ('cxm worker' does)"
    ),
) -> None:
    """Serve the web UI and the API (migrates the store first).

    While it runs, the server owns an embedded store; it leaves its address and a local admin
    key in DATA_DIR/server.json (readable by you only), and the cxm commands you run meanwhile
    on this machine are run by the server (not init, worker, doctor).
    With --workers N (PostgreSQL) N processes share the port; see docs/production.md.
    """
    eng = engine(migrated=False)
    if (workers > 1 or not jobs) and eng.url.get_backend_name() == "duckdb":
        what = "--workers above 1" if workers > 1 else "--no-jobs (jobs then need 'cxm worker')"
        bad_input(
            f"{what} needs PostgreSQL: an embedded DuckDB file is opened by one process; "
            "set CXM_DATABASE_URL=postgresql+psycopg://... (docs/production.md)"
        )
    from cxm.org import auth

    try:
        auth.argon2_profile()
    except CxmError as exc:
        bad_input(str(exc))
    # The web app imports every domain: only once the options are known to be usable.
    import uvicorn

    from cxm.store import upgrade
    from cxm.web.app import create_app, freeze_start_up

    upgrade(eng)
    if workers > 1 or not jobs:
        os.environ["CXM_SERVE_JOBS"] = "1" if jobs else "0"
        console.print(f"cxm serving on http://{host}:{port} ({workers} processes)")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run("cxm.web.app:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="info", proxy_headers=False)  # fmt: skip
        return
    announced = _announce(eng, host, port)
    web = create_app(_served_settings(host, port), engine=eng, preload=True)
    if announced is not None:
        # Commands run on this machine while the store is held here are run by this server.
        from cxm.cli import forward

        forward.install(eng)
        web.state.command_runner = forward.run
        web.state.local_cli_token = announced[1].token
    console.print(f"cxm serving on http://{host}:{port}")
    freeze_start_up()
    # uvicorn re-raises SIGTERM once it has shut down; exit through Python so that the
    # discovery file and its key are cleaned up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # The app reads X-Forwarded-For itself, and only from CXM_TRUSTED_PROXIES.
        uvicorn.run(web, host=host, port=port, log_level="info", proxy_headers=False)
    finally:
        if announced is not None:
            path, server = announced
            path.unlink(missing_ok=True)
            with eng.begin() as conn:
                auth.revoke_api_key(conn, server.key_id)


def _served_settings(host: str, port: int) -> Any:
    """The settings, with links in emails pointing at this server when CXM_BASE_URL is unset."""
    from dataclasses import replace

    from cxm.config import load_settings

    conf = load_settings()
    if conf.base_url_set:
        return conf
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    served = replace(conf, base_url=f"http://{shown}:{port}")
    # Still unset for pages: they use the address each request reached the server at.
    object.__setattr__(served, "base_url_set", False)
    return served


@app.command()
def worker(
    interval: float = typer.Option(1.0, help="seconds to wait when no job is due"),
) -> None:
    """Run durable jobs and periodic scans without serving (job workers on other hosts).

    Workers share the jobs table on PostgreSQL (claims use FOR UPDATE SKIP LOCKED); stop
    with SIGTERM or Ctrl-C, a job in progress finishes first.
    """
    from cxm.config import load_settings
    from cxm.web.app import work

    eng = engine()
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    console.print(f"cxm worker on {eng.url.render_as_string(hide_password=True)}")
    work(eng, load_settings(), interval, lambda: bool(stopping))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
