"""The shipped journeys on a small demo company: the planted frictions come out as friction
sequences with the right outcome, and the mined counts equal pm4py's on the same cases."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pm4py
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app
from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.journeys import conformance, definitions, mining, service
from cxm.metrics.definitions import load as load_metrics
from cxm.store import create_engine, upgrade
from cxm.store.analytics import reading

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    folder = tmp_path_factory.mktemp("journeys_demo")
    generate(folder / "files", customers=1500, months=4, seed=11)
    eng = create_engine(f"duckdb:///{folder / 'cxm.duckdb'}")
    upgrade(eng)
    load(eng, folder / "files")
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def friction(demo: Engine) -> dict[tuple[str, str], dict]:
    """Every friction sequence (no limit) per journey and outcome the tests read."""
    pairs = [("renewal", "failure"), ("order_to_delivery", "churn"),
             ("problem_to_resolution", "churn")]  # fmt: skip
    return {
        (name, outcome): service.friction(demo, definitions.get(name), outcome, limit=10_000)
        for name, outcome in pairs
    }


def _find(found: dict, path: str) -> dict:
    return next(r for r in found["sequences"] if r["path"] == path)


def test_late_delivery_and_repeat_contact_raise_cancellation(friction: dict) -> None:
    found = friction[("renewal", "failure")]
    assert found["outcome"] == "failure" and 0.02 < found["base"]["rate"] < 0.15
    late, repeat = _find(found, "delivery_late"), _find(found, "repeat contact")
    for planted in (late, repeat):
        assert planted["lift"] > 1.3 and planted["rate"]["low"] > found["base"]["rate"] * 0.9
        assert planted["p_value"] < 0.05
    # A path without friction does not raise it.
    assert _find(found, "order_placed → order_delivered")["lift"] < 1.0


def test_late_delivery_raises_churn_on_orders(friction: dict) -> None:
    found = friction[("order_to_delivery", "churn")]
    late = _find(found, "order_placed (web) → delivery_late")
    assert late["lift_low"] > 1.0 and late["p_value"] < 0.05
    top = found["sequences"][0]["path"]
    assert any(f in top for f in ("delivery_late", "item_damaged", "return_completed"))


def test_repeat_contacts_raise_churn_on_tickets(friction: dict) -> None:
    found = friction[("problem_to_resolution", "churn")]
    assert found["sequences"][0]["path"].startswith("repeat contact")
    assert _find(found, "repeat contact (chat)")["lift_low"] > 1.0


@pytest.mark.parametrize("name", ["order_to_delivery", "problem_to_resolution", "renewal"])
def test_counts_equal_pm4py_on_the_same_cases(demo: Engine, name: str) -> None:
    journey = definitions.get(name)
    with reading(demo) as con:
        ev = mining.events(con, journey)
        frame = ev.select("case_id", "activity", "event_time", "event_id").to_pandas()
        edges = mining.directly_follows(ev).to_pandas()
        variants = mining.variants(mining.cases(con, journey, ev)).to_pandas()
    frame = frame.sort_values(["case_id", "event_time", "event_id"], kind="stable")
    df = pm4py.format_dataframe(
        frame, case_id="case_id", activity_key="activity", timestamp_key="event_time"
    )
    assert df["case:concept:name"].nunique() == int(variants["cases"].sum())
    assert Counter(df["concept:name"]) == Counter(frame["activity"])
    dfg, _starts, _ends = pm4py.discover_dfg(df)
    ours = {(r.source, r.target): int(r.frequency) for r in edges.itertuples()}
    assert ours == {k: int(v) for k, v in dfg.items()}
    theirs = pm4py.get_variants(df)
    assert {mining.SEP.join(k): int(v) for k, v in theirs.items()} == {
        r.variant: int(r.cases) for r in variants.itertuples()
    }


@pytest.fixture
def cli_env(demo: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    monkeypatch.setenv("CXM_DATABASE_URL", demo.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    return demo


def test_cli_variants_as_json_are_the_mined_variants(cli_env: Engine) -> None:
    done = runner.invoke(app, ["journeys", "variants", "order_to_delivery", "--format", "json"])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    mined = service.variants(cli_env, definitions.get("order_to_delivery"))
    assert shown == json.loads(json.dumps(mined))
    assert shown["variants"][0]["variant"] == "order_placed (web) → order_delivered"


def test_cli_map_as_dot_draws_every_edge_left_to_right(cli_env: Engine) -> None:
    done = runner.invoke(app, ["journeys", "map", "problem_to_resolution", "--format", "dot"])
    assert done.exit_code == 0, done.output
    graph = service.directly_follows(cli_env, definitions.get("problem_to_resolution"))
    assert (
        done.output.startswith('digraph "problem_to_resolution" {') and "rankdir=LR" in done.output
    )
    assert done.output.count(" -> ") == len(graph["edges"]) > 0
    # Every ticket step is Customer Service's: one fill colour, the department in each label.
    assert done.output.count('\\nservice"') == len(graph["nodes"]) > 0


def test_cli_show_gives_each_step_its_owner_and_csat(cli_env: Engine) -> None:
    done = runner.invoke(app, ["journeys", "show", "renewal", "--format", "json"])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    scores = service.score_metrics(load_metrics())
    mined = service.summary(cli_env, definitions.get("renewal"), scores=scores)
    mined["stage_order"] = conformance.stage_order(cli_env, definitions.get("renewal"))
    assert shown == json.loads(json.dumps(mined))
    assert set(shown["scores"]) == {"csat", "ces"} and shown["scores"]["csat"]["n"] > 0
    text = runner.invoke(app, ["journeys", "show", "renewal"])
    assert text.exit_code == 0, text.output
    late = next(a for a in mined["activities"] if a["activity"] == "delivery_late")
    assert late["department"] == "supply_chain"
    csat = late["scores"]["csat"]
    assert f"{csat['value']:.1f}% ({csat['low']:.1f}-{csat['high']:.1f}" in text.output


def test_cli_unknown_journey_exits_2_with_the_known_names(cli_env: Engine) -> None:
    done = runner.invoke(app, ["journeys", "show", "onboarding"])
    assert done.exit_code == 2
    assert "known: order_to_delivery, problem_to_resolution, renewal" in done.output


def test_cli_a_broken_company_definition_exits_2_naming_its_line(
    cli_env: Engine, tmp_path: Path
) -> None:
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "x.yaml").write_text("name: x\nactivities: []\nstart: [a]\n")
    done = runner.invoke(app, ["journeys", "list"])
    assert done.exit_code == 2
    assert "x.yaml line 2, activities" in done.output


DOCS = Path(__file__).parents[2] / "docs" / "journeys.md"
FRICTION = [  # (journey, outcome, path) quoted in the docs
    ("renewal", "failure", "repeat contact"),
    ("renewal", "failure", "delivery_late"),
    ("renewal", "failure", "delivery_late → ticket_opened"),
    ("order_to_delivery", "churn", "order_placed (web) → delivery_late"),
    ("problem_to_resolution", "churn", "repeat contact (chat)"),
    ("renewal", "failure", "order_placed → order_delivered"),
]


def figures(engine: Engine, found: dict[tuple[str, str], dict]) -> str:
    """The docs' figure tables, computed on the test demo."""
    out = [
        "| journey | cases | success | failure | open | churn | NPS | median hours "
        "| variants | rework | hand-offs per case |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, j in definitions.load().items():
        s, v = service.summary(engine, j), service.variants(engine, j, 1)
        o = s["outcomes"]
        out.append(
            f"| {name} | {s['cases']} | {o['success']['rate']:.1%} | {o['failure']['rate']:.1%} "
            f"| {o['open']['rate']:.1%} | {s['churn']['rate']:.1%} | {s['nps']['nps']:+.1f} "
            f"| {s['throughput_hours']['median']:.1f} | {v['distinct']} "
            f"| {s['rework']['rate']:.1%} | {s['handoffs']['per_case']:.2f} |"
        )
    out += ["", "| journey | outcome | path | cases | rate (95%) | base | lift | p |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, outcome, path in FRICTION:
        f = found[(name, outcome)]
        r = _find(f, path)
        out.append(
            f"| {name} | {outcome} | {path} | {r['cases']} | {r['rate']['rate']:.1%} "
            f"({r['rate']['low']:.1%}-{r['rate']['high']:.1%}) | {f['base']['rate']:.1%} "
            f"| {r['lift']:.2f} | {r['p_value']:.2g} |"
        )
    return "\n".join(out)


def test_docs_quote_the_figures_the_demo_gives(demo: Engine, friction: dict) -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- figures:start -->\n")[1].split("\n<!-- figures:end -->")[0]
    assert block == figures(demo, friction)


def test_each_nps_answer_counts_once_in_a_journey(demo: Engine) -> None:
    """A customer with many orders lends an answer to one case only: the latest before it."""
    with demo.connect() as conn:
        answers = conn.execute(
            sa.text(
                "SELECT count(*) FROM responses WHERE respondent_kind = 'customer' "
                "AND nps_category IS NOT NULL AND customer_id IS NOT NULL"
            )
        ).scalar_one()
    for name, journey in definitions.load().items():
        nps = service.summary(demo, journey)["nps"]
        assert nps is not None and 0 < nps["n"] <= answers, name


def test_renewal_has_one_case_per_member_with_a_start(demo: Engine) -> None:
    """Profiles without a plan (callers from a shared switchboard number) are not members."""
    journey = definitions.get("renewal")
    starts = ", ".join(f"'{s}'" for s in journey.start if s != "repeat contact")
    with demo.connect() as conn:
        members = conn.execute(sa.text(
            "SELECT count(DISTINCT i.customer_id) FROM interactions i JOIN customer_traits t "
            "ON t.customer_id = i.customer_id AND t.name = 'plan' "
            f"WHERE i.name IN ({starts})")).scalar_one()  # fmt: skip
        plans = conn.execute(sa.text(
            "SELECT count(*) FROM customer_traits WHERE name = 'plan'")).scalar_one()  # fmt: skip
        callers = conn.execute(sa.text(
            "SELECT count(DISTINCT i.customer_id) FROM interactions i WHERE NOT EXISTS ("
            "SELECT 1 FROM customer_traits t WHERE t.customer_id = i.customer_id)"
        )).scalar_one()  # fmt: skip
    assert callers > 0  # the demo plants them
    assert service.summary(demo, journey)["cases"] == members <= plans


def test_repeat_orders_are_not_rework_but_repeat_failures_are(demo: Engine) -> None:
    journey = definitions.get("renewal")
    with reading(demo) as con:
        frame = mining.events(con, journey).select("case_id", "activity").to_pandas()
    counts = frame.groupby(["case_id", "activity"]).size()
    repeated = counts[counts > 1].reset_index()
    ordered_twice = set(repeated.loc[repeated.activity == "order_placed", "case_id"])
    rework = set(repeated.loc[~repeated.activity.isin(journey.repeatable), "case_id"])
    found = service.summary(demo, journey)["rework"]
    assert found["count"] == len(rework) > 0
    assert ordered_twice - rework  # customers who only ordered again carry no rework


@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_cli_map_renders_svg_and_png_with_graphviz(
    cli_env: Engine, tmp_path: Path, fmt: str, magic: bytes
) -> None:
    """Graphviz's ``dot`` comes from Debian's graphviz package (``make system-deps``)."""
    out = tmp_path / f"map.{fmt}"
    done = runner.invoke(app, ["journeys", "map", "order_to_delivery", "--format", fmt,
                               "--output", str(out)])  # fmt: skip
    assert done.exit_code == 0, done.output
    data = out.read_bytes()
    assert magic in data[:400]
    if fmt == "svg":
        graph = service.directly_follows(cli_env, definitions.get("order_to_delivery"))
        text = data.decode()
        assert text.count('class="edge"') == len(graph["edges"])
        assert all(n["activity"] in text for n in graph["nodes"])
