"""The root ``cxm`` command."""

from __future__ import annotations

import typer
import uvicorn

from cxm.actions.cli import cases_app, rules_app
from cxm.console import console, engine
from cxm.customer360.cli import customers_app, privacy_app
from cxm.demo.cli import app as demo_app
from cxm.insights.cli import app as insights_app
from cxm.interactions.cli import app as interactions_app
from cxm.interactions.cli import import_interactions
from cxm.metrics.cli import app as metrics_app
from cxm.metrics.cli import export as export_fn
from cxm.org import service as org
from cxm.org.cli import app as org_app
from cxm.org.cli import keys_app, users_app
from cxm.privacy.cli import erase as privacy_erase
from cxm.store import upgrade
from cxm.surveys.cli import app as surveys_app
from cxm.surveys.cli import import_responses
from cxm.text.cli import app as text_app

app = typer.Typer(
    help="cxm: Customer Experience Management. Start with 'cxm init', then 'cxm serve'.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
import_app = typer.Typer(help="Import files: interactions, survey responses.", no_args_is_help=True)
import_app.command("interactions")(import_interactions)
import_app.command("responses")(import_responses)
for group, name in (
    (org_app, "org"), (keys_app, "keys"), (users_app, "users"), (demo_app, "demo"),
    (import_app, "import"), (interactions_app, "interactions"), (customers_app, "customers"),
    (privacy_app, "privacy"), (surveys_app, "surveys"), (metrics_app, "metrics"),
    (text_app, "text"), (cases_app, "cases"), (rules_app, "rules"), (insights_app, "insights"),
):  # fmt: skip
    app.add_typer(group, name=name)
app.command("export")(export_fn)
privacy_app.command("erase")(privacy_erase)


@app.command()
def init() -> None:
    """Create or migrate the store (CXM_DATABASE_URL) and seed the default departments."""
    eng = engine(migrated=False)
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
