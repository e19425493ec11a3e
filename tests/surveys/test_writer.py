"""The answer writer: respondents' steps share transactions, and each is answered only after
its commit; a failing step fails alone."""

from __future__ import annotations

from concurrent.futures import wait

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from cxm.org import service as org
from cxm.surveys import service
from cxm.surveys.tables import response_answers, responses
from cxm.surveys.writer import AnswerWriter
from tests.surveys.conftest import apply


def _tokens(engine: Engine, n: int) -> list[str]:
    with engine.begin() as conn:
        org.seed_defaults(conn)
        apply(conn)
        return [service.create_invitation(conn, "delivery_csat").token for _ in range(n)]


def _answer(token: str, score: str) -> object:
    def work(conn: Connection) -> str:
        session = service.session_for_token(conn, token)
        service.save_answer(conn, session, "csat", [score])
        assert session.response_id is not None
        return session.response_id

    return work


def test_concurrent_steps_share_commits_and_every_acknowledged_answer_is_stored(
    engine: Engine,
) -> None:
    tokens = _tokens(engine, 40)
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    writer = AnswerWriter(engine)
    try:
        futures = [writer.submit(_answer(t, str(1 + i % 5))) for i, t in enumerate(tokens)]  # type: ignore[arg-type]
        wait(futures)
        ids = [f.result() for f in futures]
    finally:
        writer.close()
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(responses.c.id, responses.c.csat)).all())
    assert {i: stored[i] for i in ids} == {i: 1 + n % 5 for n, i in enumerate(ids)}
    assert len(set(ids)) == 40 and len(commits) < 40  # some steps shared a transaction


def test_a_failing_step_fails_alone_and_leaves_nothing_behind(engine: Engine) -> None:
    tokens = _tokens(engine, 6)

    def broken(conn: Connection) -> str:
        _answer(tokens[0], "5")(conn)  # type: ignore[operator]
        raise RuntimeError("this step breaks after writing")

    writer = AnswerWriter(engine)
    try:
        futures = [writer.submit(broken)] + [writer.submit(_answer(t, "4")) for t in tokens[1:]]  # type: ignore[arg-type]
        wait(futures)
    finally:
        writer.close()
    with pytest.raises(RuntimeError, match="breaks"):
        futures[0].result()
    good = [f.result() for f in futures[1:]]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(responses.c.id, responses.c.csat)).all()
        answers = conn.execute(sa.select(sa.func.count()).select_from(response_answers)).scalar()
    assert sorted(stored) == sorted((i, 4) for i in good)
    assert answers == len(good)  # the broken step's answer was rolled back with it
