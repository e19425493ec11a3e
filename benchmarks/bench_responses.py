"""Response submissions per second through HTTP, and the weight of the survey page.

Runs the real app (ASGI, in process) on a temporary DuckDB store. The baseline is one
submission per request with a new HTTP client each time; the measured figure reuses one client.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from cxm.config import load_settings
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.surveys import service
from cxm.web.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, runs in seconds")
    args = parser.parse_args()
    n = 30 if args.quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"duckdb:///{Path(tmp) / 'cxm.duckdb'}")
        upgrade(engine)
        with engine.begin() as conn:
            org.seed_defaults(conn)
            service.apply_templates(conn)
            tokens = [service.create_invitation(conn, "support_csat").token for _ in range(2 * n)]
        app = create_app(load_settings(data_dir=Path(tmp), database_url=str(engine.url)),
                         engine=engine, run_worker=False)  # fmt: skip

        def answer(client: TestClient, token: str | None) -> None:
            r = client.post(f"/s/{token}", data={"q": "csat", "a": "4"}, follow_redirects=False)
            assert r.status_code in (200, 303), r.text

        with TestClient(app) as client:
            page = client.get(f"/s/{tokens[-1]}")
            start = time.perf_counter()
            for token in tokens[:n]:
                answer(client, token)
            reused = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for token in tokens[n : 2 * n]:
            with TestClient(app) as fresh:
                answer(fresh, token)
        baseline = n / (time.perf_counter() - start)
        engine.dispose()
    print(f"survey page weight: {len(page.content)} bytes (HTML+CSS, no JavaScript; limit 50000)")
    print(f"submissions/s, one client: {reused:.1f}  (n={n})")
    print(f"submissions/s, new client per request (baseline): {baseline:.1f}")
    print(f"ratio: {reused / baseline:.2f}x")


if __name__ == "__main__":
    main()
