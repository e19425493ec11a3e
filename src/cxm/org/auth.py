"""Users and API keys: argon2 password hashes, hashed-at-rest API keys with scopes."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy.engine import Connection

from cxm.errors import Conflict, Invalid, NotFound
from cxm.org.schemas import ROLES
from cxm.org.tables import api_keys, partners, sign_in_attempts, teams, user_sessions, users
from cxm.store import utcnow

SCOPES = ("ingest", "read", "admin")
KEY_PREFIX = "cxm_"
# argon2-cffi's parameter profiles, by the name ``CXM_ARGON2_PROFILE`` takes.
ARGON2_PROFILES = {
    "RFC_9106_LOW_MEMORY": profiles.RFC_9106_LOW_MEMORY,
    "RFC_9106_HIGH_MEMORY": profiles.RFC_9106_HIGH_MEMORY,
    "CHEAPEST": profiles.CHEAPEST,
}
DEFAULT_ARGON2_PROFILE = "RFC_9106_LOW_MEMORY"


def argon2_profile() -> str:
    """The argon2id parameter profile new password hashes use: ``CXM_ARGON2_PROFILE``, one of
    ``ARGON2_PROFILES`` (argon2-cffi's ``argon2.profiles``), default ``RFC_9106_LOW_MEMORY``
    (RFC 9106 section 4, second recommendation: 64 MiB, 3 passes, 4 lanes).

    ``CHEAPEST`` (8 KiB, one pass) exists for test suites, where hundreds of sign-ins would
    otherwise spend most of their time hashing; it protects nothing, and ``cxm doctor``
    fails on it. Hashes keep their own parameters, so changing the profile never locks anyone
    out. Raises ``Invalid`` naming the known profiles for any other value (``cxm serve``
    refuses to start with it).
    """
    name = os.environ.get("CXM_ARGON2_PROFILE", "").strip().upper() or DEFAULT_ARGON2_PROFILE
    if name not in ARGON2_PROFILES:
        raise Invalid(
            f"CXM_ARGON2_PROFILE: '{name}' is not a known profile; "
            f"known: {', '.join(ARGON2_PROFILES)}"
        )
    return name


@functools.cache
def _hasher_for(name: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(ARGON2_PROFILES[name])


def _hasher() -> PasswordHasher:
    return _hasher_for(argon2_profile())


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (via session or their key) or a bare key, with what it may do."""

    scope: str
    role: str
    user_id: str | None = None
    email: str | None = None
    department_key: str | None = None
    team_key: str | None = None
    partner_key: str | None = None

    def allows(self, needed: str) -> bool:
        """admin may do everything; read and ingest only what they name."""
        return self.scope == "admin" or self.scope == needed


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    # API keys carry 192 random bits, so a fast hash is safe at rest (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    conn: Connection,
    email: str,
    role: str,
    *,
    password: str | None = None,
    name: str | None = None,
    department_key: str | None = None,
    team_key: str | None = None,
    partner_key: str | None = None,
) -> str:
    """Create a user; returns its id. Managers need a department, agents a team, partner
    users a partner (and nothing else: they belong to no department or team)."""
    email = email.strip().lower()
    if "@" not in email:
        raise Invalid(f"'{email}' is not an email address")
    if role not in ROLES:
        raise Invalid(f"unknown role '{role}'; known: {', '.join(ROLES)}")
    if conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
        raise Conflict(f"a user with email '{email}' already exists")
    if team_key is not None:
        team_dept = conn.execute(
            sa.select(teams.c.department_key).where(teams.c.key == team_key)
        ).scalar()
        if team_dept is None:
            raise NotFound(f"team '{team_key}' does not exist")
        department_key = department_key or team_dept
    if role == "manager" and department_key is None:
        raise Invalid("a manager needs a department (--department)")
    if role == "agent" and team_key is None:
        raise Invalid("an agent needs a team (--team)")
    if role == "partner":
        if partner_key is None:
            raise Invalid("a partner user needs a partner (--partner)")
        if department_key is not None or team_key is not None:
            raise Invalid("a partner user belongs to a partner, not to a department or team")
        known = set(conn.execute(sa.select(partners.c.key)).scalars())
        if partner_key not in known:
            listing = ", ".join(sorted(known)) or "none"
            raise NotFound(f"partner '{partner_key}' does not exist; known: {listing}")
    elif partner_key is not None:
        raise Invalid(f"only users of role 'partner' name a partner, not a {role}")
    user_id = secrets.token_hex(8)
    conn.execute(
        users.insert().values(
            id=user_id,
            email=email,
            name=name,
            role=role,
            department_key=department_key,
            team_key=team_key,
            partner_key=partner_key,
            password_hash=hash_password(password) if password else None,
            is_active=True,
            failed_logins=0,
            created_at=utcnow(),
        )
    )
    return user_id


def user_id_for(conn: Connection, email: str) -> str:
    user_id = conn.execute(
        sa.select(users.c.id).where(users.c.email == email.strip().lower())
    ).scalar()
    if user_id is None:
        raise NotFound(f"no user with email '{email}'")
    return str(user_id)


def create_api_key(
    conn: Connection, scope: str, *, user_id: str | None = None, name: str | None = None
) -> str:
    """Create an API key and return it in plain text: this is the only time it is shown."""
    if scope not in SCOPES:
        raise Invalid(f"unknown scope '{scope}'; known: {', '.join(SCOPES)}")
    if user_id is not None:
        role = conn.execute(sa.select(users.c.role).where(users.c.id == user_id)).scalar()
        if role is None:
            raise NotFound(f"user '{user_id}' does not exist")
        if scope == "admin" and role != "admin":
            raise Invalid(f"a {role} cannot hold an admin key; only admins can")
    prefix = secrets.token_hex(4)
    token = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    conn.execute(
        api_keys.insert().values(
            id=secrets.token_hex(8),
            user_id=user_id,
            name=name,
            scope=scope,
            prefix=prefix,
            secret_hash=_digest(token),
            created_at=utcnow(),
        )
    )
    return token


def authenticate_key(conn: Connection, token: str) -> Principal | None:
    """The principal of a valid, unrevoked key, or None."""
    row = conn.execute(
        sa.select(api_keys.c.scope, api_keys.c.user_id, api_keys.c.revoked_at).where(
            api_keys.c.secret_hash == _digest(token.strip())
        )
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.user_id is None:
        role = {"admin": "admin", "read": "cx_lead", "ingest": "viewer"}[row.scope]
        return Principal(scope=row.scope, role=role)
    user = conn.execute(sa.select(users).where(users.c.id == row.user_id)).mappings().first()
    if user is None or not user["is_active"]:
        return None
    return Principal(
        scope=row.scope,
        role=user["role"],
        user_id=user["id"],
        email=user["email"],
        department_key=user["department_key"],
        team_key=user["team_key"],
        partner_key=user["partner_key"],
    )


def list_api_keys(conn: Connection) -> list[dict[str, object]]:
    query = sa.select(
        api_keys.c.id, api_keys.c.prefix, api_keys.c.scope, api_keys.c.name, api_keys.c.user_id,
        api_keys.c.created_at, api_keys.c.revoked_at,
    ).order_by(api_keys.c.created_at)  # fmt: skip
    return [dict(r) for r in conn.execute(query).mappings()]


def revoke_api_key(conn: Connection, key_id: str) -> None:
    result = conn.execute(
        api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=utcnow())
    )
    if not result.rowcount:
        raise NotFound(f"API key '{key_id}' does not exist")


MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)


class SignInRefused(Exception):
    """Wrong email or password, or a locked account; the message is safe to show."""


def principal_for_user(conn: Connection, user_id: str) -> Principal | None:
    """The principal of an active user (sessions carry only the user id)."""
    user = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first()
    if user is None or not user["is_active"]:
        return None
    scope = "admin" if user["role"] == "admin" else "read"
    return Principal(
        scope=scope,
        role=user["role"],
        user_id=user["id"],
        email=user["email"],
        department_key=user["department_key"],
        team_key=user["team_key"],
        partner_key=user["partner_key"],
    )


# One answer for every refused sign-in, so it does not tell which emails have accounts.
REFUSED = "wrong email or password; after 5 failed sign-ins an account is locked for 15 minutes"


@functools.cache
def _dummy_hash(profile: str) -> str:
    """A throwaway hash with the profile's parameters (a verify against it costs what one
    against a real account's hash costs)."""
    return _hasher_for(profile).hash(secrets.token_urlsafe(16))


def _burn_verify(password: str) -> None:
    """Verify against a throwaway argon2 hash: unknown emails take as long as known ones."""
    verify_password(_dummy_hash(argon2_profile()), password)


def sign_in(conn: Connection, email: str, password: str, now: dt.datetime | None = None) -> str:
    """Check a password; returns the user id. Locks the account after repeated failures.

    Every refusal raises SignInRefused with the same message (``REFUSED``) after one argon2
    verification, for unknown, inactive, locked and existing accounts alike (OWASP ASVS
    2.2 / 3.x: no account enumeration by message or by time). Each attempt on an account is
    appended to ``sign_in_attempts`` in the caller's transaction (never an update), so any
    number of concurrent attempts commit without conflict and each counts.
    """
    now = now or utcnow()
    user = (
        conn.execute(sa.select(users).where(users.c.email == email.strip().lower()))
        .mappings()
        .first()
    )
    if user is None or not user["is_active"] or not user["password_hash"]:
        _burn_verify(password)
        raise SignInRefused(REFUSED)
    if lockout_until(conn, user["id"], now) is not None:
        _burn_verify(password)
        raise SignInRefused(REFUSED)
    succeeded = verify_password(user["password_hash"], password)
    conn.execute(
        sign_in_attempts.insert().values(
            id=secrets.token_hex(16), user_id=user["id"], attempted_at=now, succeeded=succeeded
        )
    )
    if not succeeded:
        raise SignInRefused(REFUSED)
    return str(user["id"])


def _failures_since_success(user_ids: list[str] | None = None) -> sa.Select[Any]:
    """(user_id, attempted_at) of failed attempts after each user's last success, in order."""
    a = sign_in_attempts
    ok = a.alias("ok")
    last_success = (
        sa.select(sa.func.max(ok.c.attempted_at))
        .where(ok.c.user_id == a.c.user_id, ok.c.succeeded)
        .scalar_subquery()
    )
    query = (
        sa.select(a.c.user_id, a.c.attempted_at)
        .where(
            a.c.succeeded.is_(False),
            sa.or_(last_success.is_(None), a.c.attempted_at > last_success),
        )
        .order_by(a.c.user_id, a.c.attempted_at)
    )
    return query.where(a.c.user_id.in_(user_ids)) if user_ids is not None else query


def _replay(failures: list[dt.datetime], now: dt.datetime) -> dt.datetime | None:
    """Every ``MAX_FAILED_LOGINS`` failures lock for ``LOCKOUT`` from the last of them;
    failures while locked (concurrent guesses) do not count; the count restarts after a lock."""
    count, until = 0, None
    for at in failures:
        if until is not None and at < until:
            continue
        if until is not None:
            count, until = 0, None
        count += 1
        if count >= MAX_FAILED_LOGINS:
            until, count = at + LOCKOUT, 0
    return until if until is not None and until > now else None


def lockout_until(
    conn: Connection, user_id: str, now: dt.datetime | None = None
) -> dt.datetime | None:
    """When the account's lockout ends, or None if it is not locked at ``now``.

    Replays the failed attempts since the last successful sign-in (see ``_replay``).
    """
    rows = conn.execute(_failures_since_success([user_id])).all()
    return _replay([r.attempted_at for r in rows], now or utcnow())


def change_password(
    conn: Connection, user_id: str, current: str, new: str, *, keep_session: str | None = None
) -> None:
    """Change a password after checking the current one; at least 10 characters.

    Every other session of the user ends (``keep_session``, the token of the session that
    made the change, stays), so a stolen cookie does not outlive a password change.
    """
    stored = conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).scalar()
    if not verify_password(stored, current):
        raise Invalid("the current password is wrong")
    if len(new) < 10:
        raise Invalid("the new password needs at least 10 characters")
    conn.execute(
        users.update().where(users.c.id == user_id).values(password_hash=hash_password(new))
    )
    query = user_sessions.delete().where(user_sessions.c.user_id == user_id)
    if keep_session:
        query = query.where(user_sessions.c.token_hash != _digest(keep_session))
    conn.execute(query)


@dataclass(frozen=True)
class Session:
    user_id: str
    csrf: str


def start_session(
    conn: Connection, user_id: str, age: dt.timedelta, now: dt.datetime | None = None
) -> tuple[str, str]:
    """A new server-side session; returns (token for the cookie, its CSRF token).

    The token carries 256 random bits; only its SHA-256 digest is stored.
    """
    now = now or utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    conn.execute(user_sessions.delete().where(user_sessions.c.expires_at <= now))
    conn.execute(
        user_sessions.insert().values(
            token_hash=_digest(token), user_id=user_id, csrf=csrf, created_at=now,
            expires_at=now + age,
        )
    )  # fmt: skip
    return token, csrf


def find_session(conn: Connection, token: str, now: dt.datetime | None = None) -> Session | None:
    """The live session of a cookie token, or None (unknown, ended or expired)."""
    row = conn.execute(
        sa.select(user_sessions.c.user_id, user_sessions.c.csrf, user_sessions.c.expires_at).where(
            user_sessions.c.token_hash == _digest(token)
        )
    ).first()
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    return Session(user_id=str(row.user_id), csrf=str(row.csrf))


def end_session(conn: Connection, token: str) -> None:
    """Sign-out: the session is gone from the store, so a copy of the cookie stops working."""
    conn.execute(user_sessions.delete().where(user_sessions.c.token_hash == _digest(token)))


def list_users(conn: Connection) -> list[dict[str, object]]:
    """Users without their password hashes; ``locked_until`` when a lockout is running."""
    query = sa.select(
        users.c.id, users.c.email, users.c.name, users.c.role, users.c.department_key,
        users.c.team_key, users.c.partner_key, users.c.is_active, users.c.created_at,
    ).order_by(users.c.email)  # fmt: skip
    failures: dict[str, list[dt.datetime]] = {}
    for row in conn.execute(_failures_since_success()):
        failures.setdefault(row.user_id, []).append(row.attempted_at)
    now = utcnow()
    return [
        dict(r) | {"locked_until": _replay(failures.get(r["id"], []), now)}
        for r in conn.execute(query).mappings()
    ]
