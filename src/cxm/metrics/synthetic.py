"""A synthetic company's facts (org, customers, traits, responses, interactions) at any size.

Used by the benchmark and the engine conformance suite when no demo company is loaded: the
rows are generated with numpy from a seed (same seed, same facts) and written in bulk.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from sqlalchemy.engine import Engine

from cxm.customers.facts import customer_traits, customers
from cxm.interactions.facts import interactions
from cxm.org.facts import departments, teams, touchpoints
from cxm.store.bulk import insert_table
from cxm.surveys.facts import responses_table as responses

# key, channel, stage, owning department, mean NPS answer (friction lowers it)
TOUCHPOINTS = [
    ("checkout_web", "web", "purchase", "sales", 8.2),
    ("delivery", "logistics", "delivery", "operations", 6.9),
    ("support_chat", "chat", "service", "service", 7.6),
    ("support_phone", "phone", "service", "service", 7.1),
    ("invoice", "email", "billing", "billing", 7.4),
    ("mobile_app", "app", "use", "product", 8.0),
]
DEPARTMENTS = sorted({t[3] for t in TOUCHPOINTS} | {"people"})
SEGMENTS = ["consumer", "business"]
REGIONS = ["north", "south", "east", "west"]
EPOCH = dt.datetime(2025, 1, 1)


def _times(rng: np.random.Generator, n: int, months: int) -> np.ndarray:
    seconds = rng.integers(0, months * 30 * 86400, n)
    return np.datetime64(EPOCH, "s") + seconds.astype("timedelta64[s]")


def facts(customers_n: int, months: int, seed: int = 7) -> dict[str, pa.Table]:
    """The fact tables as Arrow tables (naive UTC times)."""
    rng = np.random.default_rng(seed)
    cust = np.array([f"c{i:07d}" for i in range(customers_n)])
    seg = rng.choice(SEGMENTS, customers_n, p=[0.7, 0.3])
    reg = rng.choice(REGIONS, customers_n)
    out: dict[str, pa.Table] = {}
    first = _times(rng, customers_n, 1)
    out["customers"] = pa.table({
        "id": cust, "created_at": first, "first_seen": first, "last_seen": first,
        "interaction_count": np.zeros(customers_n, dtype=np.int32),
    })  # fmt: skip
    out["customer_traits"] = pa.table({
        "customer_id": np.concatenate([cust, cust]),
        "name": np.repeat(["segment", "region"], customers_n),
        "value": np.concatenate([seg, reg]),
        "set_at": np.concatenate([first, first]),
    })  # fmt: skip

    # Survey responses: about one per customer per two months.
    n = customers_n * months // 2
    who = rng.integers(0, customers_n, n)
    tp = rng.integers(0, len(TOUCHPOINTS), n)
    mean = np.array([t[4] for t in TOUCHPOINTS])[tp] - 0.6 * (seg[who] == "business")
    score = np.clip(np.rint(rng.normal(mean, 2.0)), 0, 10).astype(np.int32)
    started = _times(rng, n, months)
    completed = rng.random(n) < 0.85
    employee = rng.random(n) < 0.03
    cat = np.where(score >= 9, "promoter", np.where(score >= 7, "passive", "detractor"))
    csat = np.clip(np.rint(score / 2.2 + rng.normal(0.4, 0.7, n)), 1, 5).astype(np.int32)
    ces = np.clip(np.rint(score / 1.6 + rng.normal(0.5, 1.0, n)), 1, 7).astype(np.int32)
    keys = np.array([t[0] for t in TOUCHPOINTS])[tp]
    chans = np.array([t[1] for t in TOUCHPOINTS])[tp]
    out["responses"] = pa.table({
        "id": np.char.add("r", np.arange(n).astype(str)),
        "survey_key": np.where(
            employee, "pulse", np.where(tp < 2, "relationship", "transactional")
        ),
        "survey_version": np.ones(n, dtype=np.int32),
        "respondent_kind": np.where(employee, "employee", "customer"),
        "customer_id": pa.array(cust[who], pa.string(), mask=employee),
        "touchpoint_key": pa.array(keys, pa.string(), mask=employee),
        "channel": pa.array(chans, pa.string(), mask=employee),
        "started_at": started,
        "submitted_at": pa.array(np.where(completed, started, np.datetime64("NaT")),
                                 pa.timestamp("s")),
        "completed": completed,
        "nps": pa.array(score, pa.int32(), mask=~completed),
        "nps_category": pa.array(cat, pa.string(), mask=~completed),
        "csat": pa.array(csat, pa.int32(), mask=~completed | employee),
        "ces": pa.array(ces, pa.int32(), mask=~completed | employee),
        "source": np.full(n, "web"),
    })  # fmt: skip

    # Interactions: service contacts, subscription decisions, deliveries, payments.
    m = customers_n * months
    who = rng.integers(0, customers_n, m)
    kind = rng.choice(
        ["ticket_opened", "ticket_closed", "subscription_renewed", "subscription_cancelled",
         "order_delivered", "delivery_late", "payment_received"],
        m, p=[0.2, 0.0, 0.14, 0.02, 0.32, 0.04, 0.28],
    )  # fmt: skip
    tp_of = {
        "ticket_opened": "support_chat", "ticket_closed": "support_chat",
        "subscription_renewed": "checkout_web", "subscription_cancelled": "checkout_web",
        "order_delivered": "delivery", "delivery_late": "delivery", "payment_received": "invoice",
    }  # fmt: skip
    phone = rng.random(m) < 0.4
    tpk = np.vectorize(tp_of.get)(kind)
    tpk = np.where((tpk == "support_chat") & phone, "support_phone", tpk)
    chan = np.vectorize({t[0]: t[1] for t in TOUCHPOINTS}.get)(tpk)
    times = _times(rng, m, months)
    # Most tickets are closed a few hours to days later by the same customer's ticket.
    opened = np.flatnonzero((kind == "ticket_opened") & (rng.random(m) < 0.85))
    delay = (rng.gamma(1.5, 16.0, opened.size) * 3600).astype("timedelta64[s]")
    who = np.concatenate([who, who[opened]])
    kind = np.concatenate([kind, np.full(opened.size, "ticket_closed")])
    tpk = np.concatenate([tpk, tpk[opened]])
    chan = np.concatenate([chan, chan[opened]])
    times = np.concatenate([times, times[opened] + delay])
    m = kind.size
    revenue = np.where(kind == "payment_received", np.round(rng.gamma(2.0, 40.0, m), 2), np.nan)
    out["interactions"] = pa.table({
        "event_id": np.char.add("e", np.arange(m).astype(str)),
        "type": np.full(m, "track"), "name": kind, "event_time": times, "received_at": times,
        "customer_id": cust[who], "touchpoint_key": tpk, "channel": chan,
        "revenue": pa.array(revenue, pa.float64(), from_pandas=True), "source": np.full(m, "api"),
    })  # fmt: skip
    return out


def write(engine: Engine, customers_n: int, months: int, seed: int = 7) -> dict[str, int]:
    """Write the org and a synthetic fact set into an empty store; returns rows per table."""
    tables = facts(customers_n, months, seed)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(departments.delete())
        conn.execute(teams.delete())
        conn.execute(touchpoints.delete())
        conn.execute(departments.insert(), [
            {"key": d, "name": d.replace("_", " ").title(), "position": i}
            for i, d in enumerate(DEPARTMENTS)])  # fmt: skip
        conn.execute(teams.insert(), [
            {"key": f"{d}_default", "department_key": d, "name": d, "is_default": True}
            for d in DEPARTMENTS])  # fmt: skip
        conn.execute(touchpoints.insert(), [
            {"key": k, "name": k, "channel": c, "stage": s, "department_key": d,
             "team_key": f"{d}_default", "created_at": now}
            for k, c, s, d, _ in TOUCHPOINTS])  # fmt: skip
        for name, table in tables.items():
            target = {"customers": customers, "customer_traits": customer_traits,
                      "responses": responses, "interactions": interactions}[name]  # fmt: skip
            insert_table(conn, target, table)
    return {name: t.num_rows for name, t in tables.items()}
