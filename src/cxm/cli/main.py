"""The root ``cxm`` command."""

from __future__ import annotations

import typer
import uvicorn

from cxm.console import console, engine, settings
from cxm.customer360.cli import customers_app, privacy_app
from cxm.demo.cli import app as demo_app
from cxm.interactions.cli import app as interactions_app
from cxm.interactions.cli import import_interactions
from cxm.metrics.cli import app as metrics_app
from cxm.metrics.cli import export as export_fn
from cxm.org import service as org
from cxm.org.cli import app as org_app
from cxm.org.cli import keys_app, users_app
from cxm.store import create_engine, upgrade
from cxm.text.cli import app as text_app

app = typer.Typer(
    help="cxm: Customer Experience Management. Start with 'cxm init', then 'cxm serve'.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(org_app, name="org")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(demo_app, name="demo")
import_app = typer.Typer(help="Import files: interactions, survey responses.", no_args_is_help=True)
app.add_typer(import_app, name="import")
# domain command groups and import commands
from cxm.actions.cli import cases_app, rules_app  # noqa: E402

app.add_typer(cases_app, name="cases")
app.add_typer(rules_app, name="rules")
app.add_typer(text_app, name="text")
app.add_typer(metrics_app, name="metrics")
app.command("export")(export_fn)
app.add_typer(interactions_app, name="interactions")
app.add_typer(customers_app, name="customers")
app.add_typer(privacy_app, name="privacy")
import_app.command("interactions")(import_interactions)
from cxm.surveys.cli import app as surveys_app  # noqa: E402
from cxm.surveys.cli import import_responses  # noqa: E402

app.add_typer(surveys_app, name="surveys")
import_app.command("responses")(import_responses)


@app.command()
def init() -> None:
    """Create or migrate the store (CXM_DATABASE_URL) and seed the default departments."""
    url = settings().database_url
    eng = create_engine(url)
    upgrade(eng)
    with eng.begin() as conn:
        seeded = org.seed_defaults(conn)
    console.print(f"store ready: {eng.url.render_as_string(hide_password=True)}")
    if seeded:
        console.print("seeded the default departments")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
) -> None:
    """Serve the web UI and the API (migrates the store first)."""
    from cxm.web.app import create_app

    eng = engine(migrated=False)
    upgrade(eng)
    console.print(f"cxm serving on http://{host}:{port}")
    uvicorn.run(create_app(engine=eng), host=host, port=port, log_level="info")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
