"""The dashboards' shared results: fresh for a minute, recomputed while in use, then dropped."""

from __future__ import annotations

from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.org import service as org
from cxm.org.schemas import DepartmentCreate
from cxm.store.analytics import ReaderPool
from cxm.web.board import FrameCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def departments(con: BaseBackend) -> int:
    return int(con.table("departments").count().execute())


def test_results_expire_after_ttl() -> None:
    clock = Clock()
    cache = FrameCache(ttl=60, clock=clock)
    cache.put(("a",), 1)
    assert cache.get(("a",)) is not None and cache.get(("a",))[1] == 1  # type: ignore[index]
    clock.now += 61
    assert cache.get(("a",)) is None
    assert cache.get(("missing",)) is None


def test_refresh_recomputes_what_is_in_use_and_drops_the_rest(seeded: Engine) -> None:
    clock = Clock()
    cache = FrameCache(ttl=60, keep=600, clock=clock)
    pool = ReaderPool(seeded, workers=2)
    try:
        before = pool.map([departments])[0]
        cache.put(("used",), before, departments)
        cache.put(("idle",), before, departments)
        cache.put(("no read",), before)
        with seeded.begin() as conn:
            org.create_department(conn, DepartmentCreate(key="returns", name="Returns"))
        clock.now += 30  # not yet due
        assert cache.refresh(pool, ahead=20) == 0
        clock.now += 15  # 45 s old: due within 20 s
        assert cache.get(("used",)) is not None  # a page looks at it
        assert cache.refresh(pool, ahead=20) == 2
        fresh = cache.get(("used",))
        assert fresh is not None and fresh[1] == before + 1  # the new department counted
        clock.now += 590  # "idle" and "no read" were last used 635 s ago
        assert cache.refresh(pool, ahead=20) == 1  # only "used" (seen 590 s ago) is kept
        clock.now += 61
        assert cache.get(("idle",)) is None and cache.get(("no read",)) is None
    finally:
        pool.close()


def test_cache_is_bounded() -> None:
    clock = Clock()
    cache = FrameCache(size=4, clock=clock)
    for i in range(4):
        clock.now += 1
        cache.put((i,), i)
    clock.now += 1
    assert cache.get((3,)) is not None and cache.get((2,)) is not None  # recently used
    cache.put((4,), 4)  # full: the two used longest ago go
    assert cache.get((0,)) is None and cache.get((1,)) is None
    assert [cache.get((i,)) is not None for i in (2, 3, 4)] == [True, True, True]


def test_a_failing_refresh_drops_only_its_entry(seeded: Engine) -> None:
    clock = Clock()
    cache = FrameCache(ttl=60, clock=clock)
    pool = ReaderPool(seeded, workers=2)

    def broken(con: BaseBackend) -> int:
        return int(con.table("no_such_table").count().execute())

    try:
        cache.put(("good",), 0, departments)
        cache.put(("bad",), 0, broken)
        clock.now += 45
        assert cache.refresh(pool, ahead=20) == 1
        assert cache.get(("good",)) is not None and cache.get(("good",))[1] > 0  # type: ignore[index]
        assert cache.get(("bad",)) is None  # dropped, not kept stale
        clock.now += 45  # due again: only "good" is left to refresh
        assert [k for k, _ in cache.due(ahead=20)] == [("good",)]
    finally:
        pool.close()
