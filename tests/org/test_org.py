"""The org model: defaults, the org file (apply, export, errors), ownership rules."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.errors import Invalid, NotFound
from cxm.org import schemas, service
from cxm.org.tables import departments, touchpoints
from cxm.yamldoc import parse

ORG = """\
company: {name: Acme}
departments:
  - key: supply_chain
    name: Supply Chain & Delivery
    teams:
      - {key: last_mile, name: Last Mile, default: true}
      - {key: warehouse, name: Warehouse}
  - key: service
    name: Customer Service
    teams:
      - {key: chat_team, name: Chat, default: true}
touchpoints:
  - key: delivery
    name: Home delivery
    channel: delivery
    stage: receive
    owner: {department: supply_chain, team: last_mile}
    contributors: [service]
  - key: support_chat
    name: Support chat
    channel: chat
    stage: get help
    owner: {department: service}
"""


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_default_departments_are_seeded_once(engine: Engine) -> None:
    with engine.begin() as conn:
        assert service.seed_defaults(conn)
        assert not service.seed_defaults(conn)
        names = [d.name for d in service.list_departments(conn)]
    assert names[0] == "Executive" and "People (HR)" in names and len(names) == 10


def test_apply_creates_then_is_idempotent(seeded: Engine) -> None:
    with seeded.begin() as conn:
        first = service.apply_org(conn, parse(ORG))
    with seeded.begin() as conn:
        second = service.apply_org(conn, parse(ORG))
        tp = service.get_touchpoint(conn, "support_chat")
        delivery = service.get_touchpoint(conn, "delivery")
    assert first.created["touchpoints"] == 2 and first.created["teams"] == 3
    assert second.created == {} and second.updated == {}
    assert tp.team_key == "chat_team"  # the department's default team owns it
    assert delivery.contributors == ["service"]
    assert service.company_name(seeded.connect()) == "Acme"


def test_export_round_trips(seeded: Engine) -> None:
    with seeded.begin() as conn:
        service.apply_org(conn, parse(ORG))
        exported = service.export_org(conn)
    import yaml

    with seeded.begin() as conn:
        again = service.apply_org(conn, parse(yaml.safe_dump(exported)))
    assert again.created == {} and again.updated == {}
    assert {t["key"] for t in exported["touchpoints"]} == {"delivery", "support_chat"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("department: supply_chain, team: last_mile", "department: logistics"),
         "line 17.*department 'logistics', which does not exist; known: .*supply_chain"),
        (("key: support_chat", "key: delivery"), "touchpoint key 'delivery' appears twice"),
        (("department: supply_chain, team: last_mile", "department: service, team: last_mile"),
         "team 'last_mile' belongs to department 'supply_chain', not 'service'"),
        (("channel: chat", "channel: pigeon"), "line 2[0-9].*channel"),
        (("    owner: {department: service}\n", ""), "touchpoints.1.owner: Field required"),
        (("{key: warehouse, name: Warehouse}", "{key: warehouse, name: Warehouse, default: true}"),
         "2 default teams"),
        (("contributors: [service]", "contributors: [legal]"), "contributing department 'legal'"),
    ],
)  # fmt: skip
def test_bad_org_files_are_rejected_with_line_and_change_nothing(
    seeded: Engine, change: tuple[str, str], message: str
) -> None:
    bad = ORG.replace(*change)
    assert bad != ORG
    before = (_count(seeded, departments), _count(seeded, touchpoints))
    with pytest.raises(Invalid, match=message), seeded.begin() as conn:
        service.apply_org(conn, parse(bad, "org.yaml"))
    assert (_count(seeded, departments), _count(seeded, touchpoints)) == before


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(Invalid, match=r"org\.yaml line 3: not valid YAML"):
        parse("company:\n  name: a\n  - b\n", "org.yaml")


def test_unknown_touchpoints_are_recorded_unowned_and_can_be_assigned(seeded: Engine) -> None:
    with seeded.begin() as conn:
        service.apply_org(conn, parse(ORG))
        new = service.ensure_touchpoints(conn, {"delivery", "kiosk"})
        kiosk = service.get_touchpoint(conn, "kiosk")
        assert new == {"kiosk"} and not kiosk.owned
        assigned = service.update_touchpoint(
            conn, "kiosk", schemas.TouchpointUpdate(department_key="service", channel="store")
        )
    assert assigned.owned and assigned.team_key == "chat_team"


def test_owner_team_must_belong_to_owner_department(seeded: Engine) -> None:
    with seeded.begin() as conn:
        service.apply_org(conn, parse(ORG))
        with pytest.raises(Invalid, match="belongs to department 'supply_chain'"):
            service.update_touchpoint(
                conn, "support_chat", schemas.TouchpointUpdate(team_key="warehouse")
            )
        with pytest.raises(NotFound, match="department 'nope' does not exist"):
            service.get_department(conn, "nope")
