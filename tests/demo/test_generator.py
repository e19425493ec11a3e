"""Behaviour of the demo company generator: files, determinism, identities and planted effects."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from cxm.demo import causal
from cxm.demo.generator import (
    CUSTOMER_COLUMNS,
    LOG_COLUMNS,
    PHRASES,
    RESPONSE_COLUMNS,
    compose_comments,
    generate,
    template_count,
)
from cxm.errors import Invalid

CUSTOMERS, MONTHS, SEED = 2000, 6, 7  # the default company: large enough for stable effects
WINDOW_START = datetime(2026, 5, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
BILLING_WORDS = re.compile(
    r"charg|invoice|bill|refund|rechnung|abgebucht|berechnet|erstattung|factur|rembours|prélev",
    re.IGNORECASE,
)

GERMAN = re.compile(r"\b(die|der|ich|und|war|sehr|nicht)\b", re.IGNORECASE)
FRENCH = re.compile(r"\b(le|la|de|et|très|pas|j'ai|ça)\b", re.IGNORECASE)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, customers=CUSTOMERS, months=MONTHS, seed=SEED)
    return out


@pytest.fixture(scope="module")
def events(demo: Path) -> pa.Table:
    return pq.read_table(demo / "interactions.parquet")


@pytest.fixture(scope="module")
def rows(events: pa.Table) -> list[dict[str, Any]]:
    return events.to_pylist()


@pytest.fixture(scope="module")
def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["event_id"]: r for r in rows}


@pytest.fixture(scope="module")
def responses(demo: Path) -> list[dict[str, str]]:
    return _csv(demo / "responses.csv")


@pytest.fixture(scope="module")
def customers(demo: Path) -> list[dict[str, str]]:
    return _csv(demo / "customers.csv")


@pytest.fixture(scope="module")
def truth(demo: Path) -> dict[str, Any]:
    return json.loads((demo / "ground_truth.json").read_text(encoding="utf-8"))


def _nps(scores: list[int]) -> float:
    return 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)


# ---- determinism and formats ------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", customers=300, months=3, seed=3)
    b = generate(tmp_path / "b", customers=300, months=3, seed=3)
    c = generate(tmp_path / "c", customers=300, months=3, seed=4)
    first, second, other = _files(a.out_dir), _files(b.out_dir), _files(c.out_dir)
    assert first == second
    assert set(first) == set(other)
    for name in ("interactions.parquet", "responses.csv", "customers.csv", "pulse.csv"):
        assert first[name] != other[name], name
    assert first["org.yaml"] == other["org.yaml"]  # the company itself does not change


def test_jsonl_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    generate(tmp_path / "p", customers=200, months=2, seed=5)
    summary = generate(tmp_path / "j", customers=200, months=2, seed=5, fmt="jsonl")
    assert summary.paths["interactions"].name == "interactions.jsonl"
    from_parquet = pq.read_table(tmp_path / "p" / "interactions.parquet").to_pylist()
    lines = (tmp_path / "j" / "interactions.jsonl").read_text(encoding="utf-8").splitlines()
    from_jsonl = [json.loads(line) for line in lines]
    assert len(from_jsonl) == len(from_parquet) > 1000
    for row in from_parquet:
        row["timestamp"] = row["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert from_jsonl == from_parquet
    assert all(r["timestamp"].endswith("Z") for r in from_jsonl)
    # every other file is the same whichever format the log takes
    for name in ("responses.csv", "customers.csv", "pulse.csv", "org.yaml"):
        assert (tmp_path / "p" / name).read_bytes() == (tmp_path / "j" / name).read_bytes()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid):
        generate(tmp_path, fmt="csv")
    with pytest.raises(Invalid):
        generate(tmp_path, customers=3)


def test_progress_names_each_stage_and_summary_counts_rows(tmp_path: Path) -> None:
    stages: list[str] = []
    summary = generate(tmp_path, customers=100, months=2, progress=stages.append)
    assert stages[:4] == ["org", "customers", "activity", "surveys"]
    assert {"interactions", "responses", "employees"} <= set(stages)
    assert summary.counts["customers"] == 100
    assert (
        summary.counts["interactions"] == pq.read_metadata(summary.paths["interactions"]).num_rows
    )
    assert summary.counts["responses"] == len(_csv(summary.paths["responses"]))
    assert all(p.exists() for p in summary.paths.values())


# ---- org and survey definitions ---------------------------------------------------------------


def test_org_yaml_has_every_department_and_one_owner_per_touchpoint(demo: Path) -> None:
    org = yaml.safe_load((demo / "org.yaml").read_text(encoding="utf-8"))
    assert org["company"] == {"name": "Northwind Living"}
    departments = {d["key"]: d for d in org["departments"]}
    assert {k: d["name"] for k, d in departments.items()} == {
        "executive": "Executive",
        "marketing": "Marketing & Brand",
        "sales": "Sales",
        "product": "Product",
        "service": "Customer Service",
        "operations": "Operations",
        "supply_chain": "Supply Chain & Delivery",
        "billing": "Billing & Finance",
        "it": "Tech & IT",
        "people": "People (HR)",
    }
    for d in departments.values():
        assert 1 <= len(d["teams"]) <= 3
        assert sum(bool(t.get("default")) for t in d["teams"]) == 1
    touchpoints = org["touchpoints"]
    assert len(touchpoints) >= 14
    assert len({tp["key"] for tp in touchpoints}) == len(touchpoints)
    for tp in touchpoints:
        owner = tp["owner"]
        assert set(owner) == {"department", "team"}
        assert owner["team"] in {t["key"] for t in departments[owner["department"]]["teams"]}
        assert tp["channel"] in causal.CHANNELS
        assert set(tp.get("contributors", [])) <= set(departments)
    assert {tp["stage"] for tp in touchpoints} == set(causal.STAGES)


def test_survey_definitions_use_the_documented_format(demo: Path) -> None:
    files = sorted(p.name for p in (demo / "surveys").iterdir())
    assert files == [
        "delivery_csat.yaml",
        "employee_pulse.yaml",
        "relationship_nps.yaml",
        "self_service_ces.yaml",
        "support_csat.yaml",
    ]
    types = {"nps", "csat", "ces", "rating", "single_choice", "multiple_choice", "open_text",
             "hidden"}  # fmt: skip
    main_question = {"relationship_nps": "nps", "delivery_csat": "csat", "support_csat": "csat",
                     "self_service_ces": "ces", "employee_pulse": "nps"}  # fmt: skip
    for name in files:
        survey = yaml.safe_load((demo / "surveys" / name).read_text(encoding="utf-8"))
        assert survey["key"] == name.removesuffix(".yaml")
        assert survey["kind"] in ("relationship", "transactional", "employee")
        assert survey["default_language"] in survey["languages"]
        for text in (survey["title"], survey["intro"], survey["thank_you"]):
            assert set(text) == set(survey["languages"])
        questions = survey["questions"]
        assert {q["type"] for q in questions} <= types
        assert questions[0]["type"] == main_question[survey["key"]] and questions[0]["required"]
        assert "comment" in {q["id"] for q in questions if q["type"] == "open_text"}
        for q in questions:
            if q["type"] != "hidden":
                assert set(q["text"]) == set(survey["languages"]), (name, q["id"])
            if q["type"] in ("single_choice", "multiple_choice"):
                assert q["options"]
            if q["type"] == "rating":
                assert q["scale"]["min"] < q["scale"]["max"]


# ---- the interaction log ----------------------------------------------------------------------


def test_log_schema_ids_and_timestamps(events: pa.Table, rows: list[dict[str, Any]]) -> None:
    assert events.column_names == list(LOG_COLUMNS)
    assert events.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    ids = events.column("event_id").to_pylist()
    assert len(set(ids)) == len(ids)
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times)  # an append-only log, in time order
    assert min(times) >= WINDOW_START and max(times) <= WINDOW_END
    assert all(t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 for t in times[:50])
    touchpoints = {tp.key: tp.channel for tp in causal.TOUCHPOINTS}
    assert {r["type"] for r in rows} == {"track", "identify", "page", "alias"}
    for r in rows[:5000]:
        assert r["touchpoint"] in touchpoints
        assert r["channel"] in causal.CHANNELS
        assert isinstance(json.loads(r["properties"]), dict)
        assert isinstance(json.loads(r["context"]), dict)
    names = {r["name"] for r in rows}
    journey = {"campaign_email_opened", "page_viewed", "login", "order_placed", "order_delivered",
               "delivery_late", "item_damaged", "app_session", "ticket_opened", "ticket_closed",
               "invoice_sent", "billing_error", "payment_received", "subscription_renewed",
               "subscription_cancelled", "survey_sent", "alias"}  # fmt: skip
    assert journey <= names


def test_identities_need_resolving_but_resolve_to_the_truth(
    rows: list[dict[str, Any]], customers: list[dict[str, str]]
) -> None:
    emails = {c["email"] for c in customers}
    phones = {c["phone"] for c in customers}
    written = [r["email"] for r in rows if r["email"] is not None]
    assert any(e != e.strip().lower() for e in written)  # case and whitespace vary ...
    assert {e.strip().lower() for e in written} <= emails  # ... but normalise to the truth
    for raw in {r["phone"] for r in rows if r["phone"] is not None}:
        number = phonenumbers.parse(raw, causal.PHONE_REGION)
        assert phonenumbers.is_valid_number(number), raw
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) in phones
    pages = [r for r in rows if r["name"] == "page_viewed"]
    assert any(r["user_id"] is None and r["anonymous_id"] for r in pages)  # browsing anonymously
    logins = [r for r in rows if r["type"] == "identify"]
    assert all(r["user_id"] and r["anonymous_id"] and r["email"] for r in logins)
    assert all("traits" in json.loads(r["properties"]) for r in logins)
    calls = [r for r in rows if r["name"] == "ticket_opened" and r["touchpoint"] == "support_phone"]
    assert calls and all(
        r["phone"] and not (r["email"] or r["user_id"] or r["crm_id"] or r["anonymous_id"])
        for r in calls
    )
    campaign = [r for r in rows if r["name"] == "campaign_email_opened"]
    assert all(r["email"] and not (r["user_id"] or r["phone"]) for r in campaign)
    aliases = [r for r in rows if r["type"] == "alias"]
    assert aliases and all(json.loads(r["properties"])["previous_id"] for r in aliases)
    seen_crm = {r["crm_id"] for r in rows if r["crm_id"]}
    assert seen_crm == {c["crm_id"] for c in customers}


def test_shared_identifiers_are_planted_as_documented(
    truth: dict[str, Any], customers: list[dict[str, str]], rows: list[dict[str, Any]]
) -> None:
    shared = truth["shared_identifiers"]
    by_key = {c["customer_key"]: c for c in customers}
    assert len(shared["emails"]) == CUSTOMERS // causal.CUSTOMERS_PER_SHARED_EMAIL
    for item in shared["emails"]:
        assert len(item["customer_keys"]) == 2
        assert {by_key[k]["email"] for k in item["customer_keys"]} == {item["value"]}
    assert len(shared["phones"]) == CUSTOMERS // causal.CUSTOMERS_PER_SHARED_PHONE
    for item in shared["phones"]:
        assert len(item["customer_keys"]) == causal.SHARED_PHONE_SIZE
        assert {by_key[k]["phone"] for k in item["customer_keys"]} == {item["value"]}
    (kiosk,) = shared["devices"]
    crm = {r["crm_id"] for r in rows if r["anonymous_id"] == kiosk["value"]}
    assert len(crm) >= 3
    assert crm == {by_key[k]["crm_id"] for k in kiosk["customer_keys"]}
    # nothing else is shared
    assert len({c["email"] for c in customers}) == CUSTOMERS - len(shared["emails"])


# ---- survey responses and planted effects ----------------------------------------------------


def test_responses_columns_rates_and_triggers(
    responses: list[dict[str, str]], by_id: dict[str, dict[str, Any]], rows: list[dict[str, Any]]
) -> None:
    assert list(responses[0]) == list(RESPONSE_COLUMNS)
    assert len({r["response_id"] for r in responses}) == len(responses)
    trigger_name = {"delivery_csat": "order_delivered", "support_csat": "ticket_closed",
                    "self_service_ces": "self_service_completed"}  # fmt: skip
    score = {"relationship_nps": ("nps", 0, 10), "delivery_csat": ("csat", 1, 5),
             "support_csat": ("csat", 1, 5), "self_service_ces": ("ces", 1, 7)}  # fmt: skip
    for r in responses:
        column, lo, hi = score[r["survey"]]
        assert lo <= int(r[column]) <= hi
        assert [c for c in ("nps", "csat", "ces") if r[c]] == [column]
        assert r["submitted_at"].endswith("Z")
        assert WINDOW_START <= datetime.fromisoformat(r["submitted_at"]) <= WINDOW_END
        if r["survey"] in trigger_name:
            event = by_id[r["trigger_event_id"]]
            assert event["name"] == trigger_name[r["survey"]]
            assert event["touchpoint"] == r["touchpoint"]
            assert event["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ") < r["submitted_at"]
        else:
            assert r["trigger_event_id"] == ""
    for survey, trigger in trigger_name.items():
        triggers = sum(1 for e in rows if e["name"] == trigger)
        answered = sum(1 for r in responses if r["survey"] == survey)
        assert 0.10 <= answered / triggers <= 0.25, survey
    languages = [r["language"] for r in responses]
    assert 0.03 <= 1 - languages.count("en") / len(languages) <= 0.15


def test_late_delivery_lowers_delivery_csat_by_about_the_stated_effect(
    responses: list[dict[str, str]], by_id: dict[str, dict[str, Any]]
) -> None:
    late: list[int] = []
    on_time: list[int] = []
    for r in responses:
        if r["survey"] == "delivery_csat":
            props = json.loads(by_id[r["trigger_event_id"]]["properties"])
            (late if props["late_days"] > 0 else on_time).append(int(r["csat"]))
    drop = np.mean(late) - np.mean(on_time)
    stated = causal.friction("late_delivery").csat_effect
    assert len(late) >= 40
    assert stated - 0.5 <= drop <= stated + 0.5, drop


def test_support_csat_is_lower_after_long_waits(
    responses: list[dict[str, str]], by_id: dict[str, dict[str, Any]]
) -> None:
    long: list[int] = []
    short: list[int] = []
    for r in responses:
        if r["survey"] == "support_csat":
            props = json.loads(by_id[r["trigger_event_id"]]["properties"])
            (long if props["wait_minutes"] >= 25 else short).append(int(r["csat"]))
    assert np.mean(long) < np.mean(short) - 0.5


def test_nps_lands_in_the_documented_range_and_frictions_lower_it(
    responses: list[dict[str, str]], customers: list[dict[str, str]]
) -> None:
    answers = [r for r in responses if r["survey"] == "relationship_nps"]
    assert 5 <= _nps([int(r["nps"]) for r in answers]) <= 35
    met = {c["crm_id"]: c for c in customers}
    for friction in ("billing_error", "repeat_contact"):
        hit = [int(r["nps"]) for r in answers if r["crm_id"] and int(met[r["crm_id"]][friction])]
        rest = [
            int(r["nps"]) for r in answers if r["crm_id"] and not int(met[r["crm_id"]][friction])
        ]
        stated = causal.friction(friction).nps_effect
        assert np.mean(hit) - np.mean(rest) < stated / 2, friction


def test_repeat_contact_customers_churn_more(customers: list[dict[str, str]]) -> None:
    def churn(group: list[dict[str, str]]) -> float:
        return sum(c["churned"] == "true" for c in group) / len(group)

    repeat = [c for c in customers if int(c["repeat_contact"]) > 0]
    others = [c for c in customers if int(c["repeat_contact"]) == 0]
    assert churn(repeat) > 1.4 * churn(others)
    assert 0.05 <= churn(customers) <= 0.25


def test_billing_error_respondents_write_about_billing(
    responses: list[dict[str, str]], customers: list[dict[str, str]]
) -> None:
    # Relationship NPS and support comments: where a billing error has its say.
    met = {c["crm_id"]: int(c["billing_error"]) > 0 for c in customers}
    surveys = ("relationship_nps", "support_csat")
    commented = [r for r in responses if r["comment"] and r["crm_id"] and r["survey"] in surveys]

    def share(group: list[dict[str, str]]) -> float:
        return sum(bool(BILLING_WORDS.search(r["comment"])) for r in group) / len(group)

    billed_wrong = [r for r in commented if met[r["crm_id"]]]
    others = [r for r in commented if not met[r["crm_id"]]]
    assert len(billed_wrong) >= 20
    assert share(billed_wrong) > max(0.15, 5 * share(others))


def test_comments_vary_much_more_than_their_templates(responses: list[dict[str, str]]) -> None:
    comments = [r["comment"] for r in responses if r["comment"]]
    assert len(set(comments)) > 0.7 * len(comments)
    assert any(r["comment"] == "" for r in responses)
    rng = np.random.default_rng(1)
    for friction in causal.FRICTION_KEYS:
        composed = compose_comments(rng, ["en"] * 400, [friction] * 400)
        cores = len(PHRASES[("en", friction)].cores)
        assert len(set(composed)) >= max(30, 10 * cores), friction
    assert template_count() < len(set(comments))


def test_comments_match_the_respondents_language(responses: list[dict[str, str]]) -> None:
    german = [r["comment"] for r in responses if r["language"] == "de" and r["comment"]]
    french = [r["comment"] for r in responses if r["language"] == "fr" and r["comment"]]
    assert german and french
    assert sum(bool(GERMAN.search(c)) for c in german) > 0.5 * len(german)
    assert sum(bool(FRENCH.search(c)) for c in french) > 0.5 * len(french)


# ---- employees and ground truth --------------------------------------------------------------


def test_teams_owning_friction_have_lower_enps(demo: Path, truth: dict[str, Any]) -> None:
    employees = _csv(demo / "employees.csv")
    assert list(employees[0])[:5] == ["employee_id", "email", "department", "team", "manager"]
    ids = {e["employee_id"] for e in employees}
    assert all(e["manager_id"] in ids for e in employees if e["manager_id"])
    assert sum(not e["manager_id"] for e in employees) == 1  # one chief, everyone else reports
    teams = {(e["department"], e["team"]) for e in employees}
    org = {(d.key, t.key) for d in causal.DEPARTMENTS for t in d.teams}
    assert teams == org
    for team in {t for _, t in teams}:
        assert sum(e["manager"] == "true" for e in employees if e["team"] == team) == 1
    team_of = {e["employee_id"]: e["team"] for e in employees}
    scores: dict[str, list[int]] = {}
    for p in _csv(demo / "pulse.csv"):
        assert 0 <= int(p["enps"]) <= 10
        scores.setdefault(team_of[p["employee_id"]], []).append(int(p["enps"]))
    share = truth["employees"]["team_friction_share"]
    calm = [s for team, ss in scores.items() if share[team] == 0 for s in ss]
    for team in ("frontline", "last_mile"):
        assert share[team] > 0.1
        assert np.mean(scores[team]) < np.mean(calm) - 0.5, team


def test_ground_truth_matches_customers_csv_and_the_causal_model(
    truth: dict[str, Any], customers: list[dict[str, str]]
) -> None:
    assert list(customers[0]) == list(CUSTOMER_COLUMNS)
    assert len(customers) == CUSTOMERS
    assert all(c["email"] == c["email"].strip().lower() for c in customers)
    assert {c["segment"] for c in customers} == set(causal.SEGMENTS)
    assert truth["seed"] == SEED and truth["customers"] == CUSTOMERS and truth["months"] == MONTHS
    assert truth["window"] == {"start": "2026-05-01T00:00:00Z", "end": "2026-10-31T23:59:59Z"}
    for row in truth["frictions"]:
        f = causal.friction(row["friction"])
        assert (row["csat_effect"], row["nps_effect"], row["churn_log_odds"]) == (
            f.csat_effect, f.nps_effect, f.churn_log_odds,
        )  # fmt: skip
        assert row["planted"] == sum(int(c[f.key]) for c in customers) > 0
        assert row["customers_affected"] == sum(int(c[f.key]) > 0 for c in customers)
    assert truth["churn"]["churned"] == sum(c["churned"] == "true" for c in customers)


def test_a_courier_partner_runs_home_delivery(demo: Path) -> None:
    org = yaml.safe_load((demo / "org.yaml").read_text(encoding="utf-8"))
    courier = {"key": "swiftpost", "name": "SwiftPost Couriers", "kind": "courier"}
    assert org["partners"] == [courier]
    run = {tp["key"]: tp for tp in org["touchpoints"] if tp.get("partner")}
    assert list(run) == ["delivery"] and run["delivery"]["partner"] == "swiftpost"
    # Still owned by the department whose last-mile team runs it with the courier.
    assert run["delivery"]["owner"] == {"department": "supply_chain", "team": "last_mile"}
