"""Checks of an installation, shared by ``cxm doctor`` and the admins' status page: the store
(reachable, migrations current), mail (settings, server reachable), the data dir, and the
programs some commands need (Java for Spark, Chromium for the browser tests)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import Engine

from cxm.config import Settings

Level = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding: ``level`` fail means the installation does not work as configured; warn
    means a feature that needs it will not work; ``fix`` says what to do."""

    name: str
    level: Level
    detail: str
    fix: str = ""


def store_checks(engine: Engine | None, url: str) -> list[Check]:
    """The store answers, and its schema is at the newest migration."""
    from cxm.store import create_engine
    from cxm.store.migrate import current_revision, head_revision

    shown = _hide_password(url)
    try:
        engine = engine or create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        current = current_revision(engine)
    except Exception as exc:  # any driver error means the same to a person: not reachable
        # The driver's own words, without SQLAlchemy's "(psycopg.OperationalError)" wrapper.
        text = str(getattr(exc, "orig", None) or exc).strip()
        reason = text.splitlines()[0][:300].removeprefix("connection failed: ") if text else ""
        fix = "check CXM_DATABASE_URL, and that the database server runs"
        if "database" in reason and "does not exist" in reason:
            name = shown.rsplit("/", 1)[-1].split("?")[0]
            fix = f"create it (createdb {name}) or point CXM_DATABASE_URL at one, then: cxm init"
        return [Check("store", "fail", f"{shown} is not reachable: {reason or type(exc).__name__}",
                      fix)]  # fmt: skip
    head = head_revision()
    checks = [Check("store", "ok", f"{shown} answers")]
    if current is None:
        checks.append(Check("migrations", "fail", "the store has no schema yet", "run: cxm init"))
    elif current != head:
        checks.append(Check("migrations", "fail", f"schema at {current}, newest is {head}",
                            "run: cxm init (it applies the missing migrations)"))  # fmt: skip
    else:
        checks.append(Check("migrations", "ok", f"schema at the newest migration ({head})"))
    return checks


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def mail_check(settings: Settings, timeout: float = 2.0) -> Check:
    """The SMTP server in the settings accepts a connection (no message is sent)."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with socket.create_connection((settings.smtp_host, settings.smtp_port), timeout=timeout):
            pass
    except OSError as exc:
        return Check("mail", "warn", f"no mail server at {where} ({exc.strerror or exc}): "
                     "survey invitations and case notifications cannot be sent",
                     "set CXM_SMTP_HOST and CXM_SMTP_PORT (and CXM_SMTP_USER, "
                     "CXM_SMTP_PASSWORD, CXM_SMTP_SECURITY) to your mail server")  # fmt: skip
    return Check("mail", "ok", f"mail server at {where} accepts connections")


def data_dir_check(settings: Settings) -> Check:
    """The data dir exists (or can be made) and takes a file."""
    path = Path(settings.data_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("data dir", "fail", f"{path} is not writable ({exc.strerror or exc})",
                     "set CXM_DATA_DIR to a folder this user may write to")  # fmt: skip
    return Check("data dir", "ok", f"{path.resolve()} is writable")


def program_checks() -> list[Check]:
    """Programs that some commands need; missing ones only switch those features off."""
    checks = []
    home = os.environ.get("JAVA_HOME")
    java = shutil.which("java") or (os.path.join(home, "bin", "java") if home else None)
    if java and os.path.exists(java):
        checks.append(Check("java", "ok", f"{java} (for 'cxm metrics --engine spark')"))
    else:
        checks.append(Check("java", "warn", "no java: 'cxm metrics --engine spark' cannot run",
                            "install a Java runtime (make system-deps)"))  # fmt: skip
    chromium = next((p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p
                     and os.path.exists(p)), None)  # fmt: skip
    if chromium:
        checks.append(Check("chromium", "ok", f"{chromium} (for the browser tests)"))
    else:
        checks.append(Check("chromium", "warn", "no chromium: the browser tests cannot run",
                            "install chromium (make system-deps)"))  # fmt: skip
    return checks


def password_check() -> Check:
    """Whether new password hashes use a profile fit for real accounts (``CXM_ARGON2_PROFILE``,
    see ``cxm.org.auth.argon2_profile``): CHEAPEST, meant for test suites, fails."""
    from cxm.errors import CxmError
    from cxm.org.auth import ARGON2_PROFILES, argon2_profile

    fix = "unset CXM_ARGON2_PROFILE (the default is RFC_9106_LOW_MEMORY)"
    try:
        name = argon2_profile()
    except CxmError as exc:
        return Check("passwords", "fail", str(exc), fix)
    p = ARGON2_PROFILES[name]
    memory = f"{p.memory_cost // 1024:,} MiB" if p.memory_cost >= 1024 else f"{p.memory_cost} KiB"
    detail = (f"argon2id, profile {name} ({memory}, {p.time_cost} "
              f"pass{'es' if p.time_cost > 1 else ''}, {p.parallelism} lane"
              f"{'s' if p.parallelism > 1 else ''})")  # fmt: skip
    if name == "CHEAPEST":
        return Check("passwords", "fail", f"{detail}: for test suites only, it protects nothing",
                     fix)  # fmt: skip
    return Check("passwords", "ok", detail)


def installation(settings: Settings, engine: Engine | None = None) -> list[Check]:
    """Every check, in the order a person fixes them."""
    return [
        data_dir_check(settings),
        *store_checks(engine, settings.database_url),
        password_check(),
        mail_check(settings),
        *program_checks(),
    ]
