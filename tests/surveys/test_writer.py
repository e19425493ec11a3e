"""The answer writer: respondents' steps share transactions, and each is answered only after
its commit; a failing step fails alone."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, wait
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from cxm.org import service as org
from cxm.store import utcnow
from cxm.surveys import service
from cxm.surveys.service import Expired
from cxm.surveys.tables import invitations, response_answers, responses
from cxm.surveys.writer import AnswerWriter, deferred
from tests.surveys.conftest import DELIVERY, apply


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


def _page_step(token: str, score: str, commits: list[int]) -> Callable[[Connection], object]:
    """What ``POST /s/{token}`` does: the open and the answer, its writes left to the writer."""

    def work(conn: Connection) -> tuple[int, str | None, bool]:
        session = service.session_for_token(conn, token, record=False)
        service.save_answer(conn, session, "csat", [score])
        service.record_open(conn, session)
        return len(commits), session.response_id, deferred(conn) is not None

    return work


def _held(writer: AnswerWriter) -> tuple[threading.Event, Future[object]]:
    """A step that keeps the writer busy until released, so the next steps queue up."""
    release, holding = threading.Event(), threading.Event()

    def hold(conn: Connection) -> bool:
        holding.set()
        return release.wait(30)

    held = writer.submit(hold)
    assert holding.wait(30)  # its transaction's steps are fixed: the next ones queue
    return release, held


def test_steps_of_one_key_never_share_a_transaction_and_see_each_others_writes(
    engine: Engine,
) -> None:
    tokens = _tokens(engine, 3)
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    writer = AnswerWriter(engine)
    try:
        release, held = _held(writer)
        steps = [(tokens[0], "2"), (tokens[1], "4"), (tokens[0], "5"), (tokens[2], "3")]
        futures = [writer.submit(_page_step(t, s, commits), key=t) for t, s in steps]
        release.set()
        wait([held, *futures])
        done = [f.result() for f in futures]
    finally:
        writer.close()
    assert all(d[2] for d in done)  # every step left its writes to the end of its transaction
    assert done[0][0] == done[1][0]  # two respondents shared a transaction ...
    assert done[0][0] != done[2][0]  # ... one respondent's two steps did not,
    assert done[0][1] == done[2][1]  # and the second step found the response the first began
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(invitations.c.token, responses.c.csat, invitations.c.opened_at)
            .join(responses, responses.c.id == invitations.c.response_id)
        ).all()  # fmt: skip
        answers = conn.execute(sa.select(sa.func.count()).select_from(response_answers)).scalar()
    assert sorted((t, csat) for t, csat, _ in stored) == sorted(
        [(tokens[0], 5), (tokens[1], 4), (tokens[2], 3)]
    )
    assert all(opened is not None for _, _, opened in stored)
    assert answers == 3  # the changed answer replaced the first, and no response twice


def test_a_group_whose_deferred_writes_fail_is_written_step_by_step(engine: Engine) -> None:
    tokens = _tokens(engine, 4)
    commits: list[int] = []

    def clash(conn: Connection) -> str:
        pending = deferred(conn)
        assert pending is not None
        row = {
            "response_id": "clash", "question_id": "csat", "question_type": "csat",
            "value_number": 1.0, "value_text": None, "value_list": None, "answered_at": utcnow(),
        }  # fmt: skip
        pending.insert(response_answers, [row, dict(row)])  # one key twice: refused at the end
        return "clash"

    writer = AnswerWriter(engine)
    try:
        release, held = _held(writer)
        futures = [writer.submit(_page_step(t, "4", commits), key=t) for t in tokens[:2]]
        futures.append(writer.submit(clash, key="clash"))
        futures += [writer.submit(_page_step(t, "4", commits), key=t) for t in tokens[2:]]
        release.set()
        wait([held, *futures])
    finally:
        writer.close()
    with pytest.raises(sa.exc.DBAPIError):
        futures[2].result()
    good = [f.result() for i, f in enumerate(futures) if i != 2]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(responses.c.id, responses.c.csat)).all()
        answered = conn.execute(sa.select(response_answers.c.response_id)).scalars().all()
    assert sorted(stored) == sorted((g[1], 4) for g in good)  # type: ignore[index]
    assert sorted(answered) == sorted(g[1] for g in good)  # type: ignore[index]


def test_a_shared_transaction_reads_the_current_version_once_and_never_keeps_it(
    engine: Engine,
) -> None:
    tokens = _tokens(engine, 4)
    lookups: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "surveys.current_version" in statement:
            lookups.append(statement)

    def version_of(token: str) -> Callable[[Connection], int]:
        return lambda conn: service.session_for_token(conn, token, record=False).version

    event.listen(engine, "before_cursor_execute", count)
    writer = AnswerWriter(engine)
    try:
        release, held = _held(writer)
        together = [writer.submit(version_of(t), key=t) for t in tokens[:3]]
        release.set()
        wait([held, *together])
        assert [f.result() for f in together] == [1, 1, 1]
        assert len(lookups) == 1  # three steps, one transaction, one read of the version
        with engine.begin() as conn:
            apply(conn, DELIVERY.replace("How satisfied are you?", "Happy with it?"))
        assert writer.submit(version_of(tokens[3]), key=tokens[3]).result() == 2
    finally:
        writer.close()


def _read_invitations(conn: Connection, keys: list[Hashable], memo: dict[Hashable, Any]) -> None:
    service.read_invitations(conn, [str(k) for k in keys], memo)


def _step_answering(token: str, question: str, value: str) -> Callable[[Connection], object]:
    def work(conn: Connection) -> tuple[str | None, bool, list[str]]:
        try:
            session = service.session_for_token(conn, token, record=False)
        except Expired:
            return None, False, ["expired"]
        service.save_answer(conn, session, question, [value])
        service.record_open(conn, session)
        return session.response_id, session.completed, sorted(session.seen)

    return work


def test_steps_read_their_invitations_ahead_in_one_statement_and_find_what_they_would_alone(
    engine: Engine,
) -> None:
    tokens = _tokens(engine, 4)
    reads: list[str] = []
    version_reads: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        # The invitations, and the version of each response begun (read with the response).
        invitation = "FROM survey_invitations" in statement and statement.startswith("SELECT")
        if invitation or "FROM survey_versions" in statement:
            reads.append(statement)
        if "current_version" in statement:  # the survey's version, for a response to start
            version_reads.append(statement)

    writer = AnswerWriter(engine)
    try:
        # First steps: a score of 2 shows the follow-up question, so no response completes.
        first = [
            writer.submit(_step_answering(t, "csat", "2"), key=t, read=_read_invitations)
            for t in tokens[:3]
        ]
        wait(first)
        begun = [f.result()[0] for f in first]  # type: ignore[index]
        event.listen(engine, "before_cursor_execute", count)
        release, held = _held(writer)
        # Second steps of three begun responses (one changes its score, which hides the
        # follow-up question), and the first step of a fourth invitation, in one transaction.
        second = [
            writer.submit(_step_answering(tokens[0], "what_wrong", "late"), key=tokens[0],
                          read=_read_invitations),
            writer.submit(_step_answering(tokens[1], "csat", "5"), key=tokens[1],
                          read=_read_invitations),
            writer.submit(_step_answering(tokens[2], "what_wrong", "rude"), key=tokens[2],
                          read=_read_invitations),
            writer.submit(_step_answering(tokens[3], "csat", "4"), key=tokens[3],
                          read=_read_invitations),
        ]  # fmt: skip
        release.set()
        wait([held, *second])
        done = [f.result() for f in second]
    finally:
        writer.close()
    assert len(reads) == 1  # four steps, one read of their invitations
    assert version_reads == reads  # the version for the fourth, new response read with them
    assert [d[0] for d in done[:3]] == begun  # each found the response it began
    assert [d[2] for d in done] == [
        ["csat", "what_wrong"],
        ["csat"],
        ["csat", "what_wrong"],
        ["csat"],
    ]  # and its earlier answers, as a step alone finds them
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(response_answers.c.response_id, response_answers.c.question_id,
                      response_answers.c.value_number, response_answers.c.value_text)
        ).all()  # fmt: skip
        linked = conn.execute(
            sa.select(invitations.c.token, invitations.c.response_id, invitations.c.opened_at)
        ).all()  # fmt: skip
    assert sorted(stored, key=str) == sorted([
        (begun[0], "csat", 2.0, None), (begun[0], "what_wrong", None, "late"),
        (begun[1], "csat", 5.0, None),
        (begun[2], "csat", 2.0, None), (begun[2], "what_wrong", None, "rude"),
        (done[3][0], "csat", 4.0, None),
    ], key=str)  # fmt: skip
    assert {t: r for t, r, _ in linked} == dict(zip(tokens, [*begun, done[3][0]], strict=True))
    assert all(opened is not None for _, _, opened in linked)


def test_steps_after_a_step_without_a_key_read_after_it(engine: Engine) -> None:
    tokens = _tokens(engine, 3)

    def expire(conn: Connection) -> None:  # e.g. staff closing an invitation meanwhile
        conn.execute(
            invitations.update().where(invitations.c.token == tokens[1])
            .values(expires_at=utcnow() - dt.timedelta(days=1))
        )  # fmt: skip

    writer = AnswerWriter(engine)
    try:
        release, held = _held(writer)
        futures = [
            writer.submit(_step_answering(tokens[0], "csat", "4"), key=tokens[0],
                          read=_read_invitations),
            writer.submit(expire),
            writer.submit(_step_answering(tokens[1], "csat", "4"), key=tokens[1],
                          read=_read_invitations),
            writer.submit(_step_answering(tokens[2], "csat", "4"), key=tokens[2],
                          read=_read_invitations),
        ]  # fmt: skip
        release.set()
        wait([held, *futures])
        done = [f.result() for f in futures]
    finally:
        writer.close()
    assert done[0][0] is not None and done[3][0] is not None  # type: ignore[index]
    assert done[2] == (None, False, ["expired"])  # it saw the expiry made before it ran
