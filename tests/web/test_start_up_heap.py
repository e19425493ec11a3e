"""``cxm serve`` leaves its start-up objects out of later garbage collections, after freeing
the garbage made while starting (run in a child process: freezing is for a serving process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import gc, weakref
    from cxm.web.app import create_app, freeze_start_up

    class Node:
        pass

    app = create_app()
    garbage = Node()
    garbage.self = garbage  # a cycle: only a collection frees it
    gone = weakref.ref(garbage)
    del garbage
    kept = Node()
    kept.self = kept
    freeze_start_up()
    assert gone() is None, "the garbage of start-up was frozen instead of freed"
    assert gc.get_freeze_count() > 100_000, gc.get_freeze_count()  # the app and its modules
    assert all(o is not kept for o in gc.get_objects()), "what is alive is still scanned"
    print("frozen", gc.get_freeze_count())
    """
)


def test_start_up_objects_are_frozen_and_its_garbage_freed(tmp_path: Path) -> None:
    env = {"CXM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("frozen ")
