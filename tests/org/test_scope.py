"""Role scopes as data: which touchpoints a role covers, and masking for viewers."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from cxm.org import schemas
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import MASK, mask, scope_for, visible_touchpoints


def test_manager_sees_only_their_departments_touchpoints(seeded: Engine) -> None:
    with seeded.begin() as conn:
        for key, dept in [
            ("invoice", "billing"),
            ("refunds", "billing"),
            ("delivery", "supply_chain"),
        ]:
            org.create_touchpoint(
                conn,
                schemas.TouchpointCreate(
                    key=key, name=key, channel="billing", stage="pay", department_key=dept
                ),
            )
        manager = scope_for(Principal(scope="read", role="manager", department_key="billing"))
        lead = scope_for(Principal(scope="read", role="cx_lead"))
        assert visible_touchpoints(conn, manager) == {"invoice", "refunds"}
        assert visible_touchpoints(conn, lead) is None


def test_viewers_get_masks_others_get_values() -> None:
    viewer = scope_for(Principal(scope="read", role="viewer"))
    agent = scope_for(Principal(scope="read", role="agent", team_key="t"))
    assert mask("ana@example.com", viewer) == MASK
    assert mask("ana@example.com", agent) == "ana@example.com"
    assert mask(None, viewer) is None
    assert not viewer.personal_data and agent.by_team and not agent.everything
