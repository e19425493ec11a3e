"""Concurrent requests against a live uvicorn server: respondents answering invitations at once
and sign-in guesses at once each get a proper answer, never a 500 from a write conflict."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.errors import Conflict
from cxm.org import auth
from cxm.org import service as org
from cxm.org.tables import sign_in_attempts
from cxm.store.retry import retrying
from cxm.surveys import service as surveys
from cxm.surveys.tables import invitations, responses
from tests.conftest import free_port
from tests.surveys.conftest import add_customer, apply

PASSWORD = "correct horse battery"
THREADS = 30


@pytest.fixture
def live(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """The real app under uvicorn (a thread pool serves requests concurrently)."""
    from cxm.web.app import create_app

    with engine.begin() as conn:
        org.seed_defaults(conn)
        apply(conn)
    settings = load_settings(data_dir=tmp_path, database_url=str(engine.url))
    app = create_app(settings, engine=engine, run_worker=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _invitation_links(engine: Engine, n: int) -> list[str]:
    with engine.begin() as conn:
        for i in range(n):
            add_customer(conn, f"person{i}@example.com")
        return [
            surveys.personal_link(conn, "", "delivery_csat", f"person{i}@example.com")
            for i in range(n)
        ]


def _at_once(work: object, items: list[object]) -> list[int]:
    """Run ``work(item)`` for every item at the same moment; their status codes."""
    start = threading.Barrier(len(items))

    def one(item: object) -> int:
        start.wait()
        return work(item)  # type: ignore[operator, no-any-return]

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_one_invitation_opened_many_times_at_once_shows_every_opener_the_survey(
    engine: Engine, live: str
) -> None:
    (link,) = _invitation_links(engine, 1)
    with httpx.Client(base_url=live, timeout=60) as client:
        codes = _at_once(lambda _: client.get(link).status_code, list(range(THREADS)))
    assert codes == [200] * THREADS
    with engine.connect() as conn:
        opened = conn.execute(sa.select(invitations.c.opened_at)).scalar()
    assert opened is not None


def test_respondents_answering_at_once_all_have_their_answer_saved(
    engine: Engine, live: str
) -> None:
    links = _invitation_links(engine, THREADS)

    def respond(link: object) -> int:
        with httpx.Client(base_url=live, timeout=60) as client:
            client.get(str(link))
            answer = client.post(str(link), data={"q": "csat", "a": "4", "lang": "en"})
            return answer.status_code

    codes = _at_once(respond, list(links))
    assert all(code in (200, 303) for code in codes), codes
    with engine.connect() as conn:
        answered = conn.execute(
            sa.select(sa.func.count()).select_from(responses).where(responses.c.csat == 4)
        ).scalar()
    assert answered == THREADS


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the sign-in form carries no CSRF token"
    return match.group(1)


def test_many_wrong_passwords_at_once_are_each_refused_and_lock_the_account(
    engine: Engine, live: str
) -> None:
    with engine.begin() as conn:
        user_id = auth.create_user(conn, "lead@example.com", "cx_lead", password=PASSWORD)

    def guess(n: object) -> int:
        with httpx.Client(base_url=live, timeout=60) as client:
            token = _csrf(client.get("/login").text)
            return client.post(
                "/login",
                data={"email": "lead@example.com", "password": f"guess {n}", "csrf_token": token},
            ).status_code

    codes = _at_once(guess, list(range(THREADS)))
    assert all(code in (401, 429) for code in codes), codes
    # Every guess counted: the account is locked, so even the right password is refused now.
    assert _sign_in(live, PASSWORD) in (401, 429)
    with engine.connect() as conn:
        assert auth.lockout_until(conn, user_id) is not None
        counted = conn.execute(
            sa.select(sa.func.count()).select_from(sign_in_attempts)
            .where(sign_in_attempts.c.user_id == user_id)
        ).scalar()  # fmt: skip
    # Guesses that found the account locked are refused before the password check; the others
    # were each counted (none lost to a conflict), at least enough to lock.
    assert auth.MAX_FAILED_LOGINS <= counted <= THREADS


def _sign_in(live: str, password: str) -> int:
    with httpx.Client(base_url=live, timeout=60) as client:
        token = _csrf(client.get("/login").text)
        return client.post(
            "/login",
            data={"email": "lead@example.com", "password": password, "csrf_token": token},
            follow_redirects=False,
        ).status_code


def test_a_unit_of_work_that_keeps_colliding_ends_in_conflict_not_a_database_error(
    duckdb_engine: Engine,
) -> None:
    with duckdb_engine.begin() as conn:
        org.seed_defaults(conn)
    rename = sa.text("UPDATE departments SET name = :name WHERE key = 'billing'")
    tries: list[int] = []

    def work(conn: sa.Connection) -> None:
        tries.append(1)
        conn.execute(rename, {"name": f"try {len(tries)}"})

    with duckdb_engine.connect() as holder:
        holder.begin()
        holder.execute(rename, {"name": "held"})  # uncommitted: every try collides with it
        with pytest.raises(Conflict, match="collided with a concurrent change 3 times"):
            retrying(duckdb_engine, work, attempts=3, what="renaming billing")
        holder.rollback()
    assert len(tries) == 3
    assert retrying(duckdb_engine, work) is None  # free again: the first try commits
    with duckdb_engine.connect() as conn:
        name = conn.execute(sa.text("SELECT name FROM departments WHERE key = 'billing'"))
        assert name.scalar() == "try 4"
