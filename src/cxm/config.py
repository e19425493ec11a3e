"""Settings read from the environment (``CXM_*``), with defaults for the embedded set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


DEFAULT_BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Settings:
    """Everything configurable; built once at the app or CLI entry, never at import time."""

    data_dir: Path = field(default_factory=lambda: Path(_env("CXM_DATA_DIR", "./data")))
    database_url: str = ""
    # The address links in emails and embeds point at. Unset (""), pages use the address the
    # server is reached at and ``cxm serve`` its own host and port; see ``base_url_set``.
    base_url: str = field(default_factory=lambda: _env("CXM_BASE_URL", ""))
    secret_key: str = field(default_factory=lambda: _env("CXM_SECRET_KEY", ""))
    smtp_host: str = field(default_factory=lambda: _env("CXM_SMTP_HOST", "127.0.0.1"))
    smtp_port: int = field(default_factory=lambda: int(_env("CXM_SMTP_PORT", "25")))
    smtp_user: str = field(default_factory=lambda: _env("CXM_SMTP_USER", ""))
    smtp_password: str = field(default_factory=lambda: _env("CXM_SMTP_PASSWORD", ""))
    smtp_security: str = field(default_factory=lambda: _env("CXM_SMTP_SECURITY", "none"))
    smtp_sender: str = field(
        default_factory=lambda: _env("CXM_SMTP_SENDER", "cxm <no-reply@cxm.local>")
    )
    # A maildir that delivery status notifications (bounces) are delivered to; empty: none.
    bounce_maildir: str = field(default_factory=lambda: _env("CXM_BOUNCE_MAILDIR", ""))
    # The SMS gateway invitations with channel "sms" are posted to; empty: no SMS channel.
    # Format "twilio" posts Twilio's form fields (To, From, Body); "json" posts sms_body (a JSON
    # template with {to}, {sender} and {text}). Auth "basic:USER:PASSWORD" or "bearer:TOKEN".
    sms_url: str = field(default_factory=lambda: _env("CXM_SMS_URL", ""))
    sms_auth: str = field(default_factory=lambda: _env("CXM_SMS_AUTH", ""))
    sms_sender: str = field(default_factory=lambda: _env("CXM_SMS_FROM", "cxm"))
    sms_format: str = field(default_factory=lambda: _env("CXM_SMS_FORMAT", "twilio"))
    sms_body: str = field(
        default_factory=lambda: _env(
            "CXM_SMS_BODY", '{"to": "{to}", "from": "{sender}", "text": "{text}"}'
        )
    )
    # The folder CRM exports (CSV: identifiers and traits) are dropped into; empty: data/crm-drop.
    crm_drop_dir: str = field(default_factory=lambda: _env("CXM_CRM_DROP_DIR", ""))
    default_phone_region: str = field(
        default_factory=lambda: _env("CXM_DEFAULT_PHONE_REGION", "DE")
    )
    # Addresses (IPs or CIDR networks) of reverse proxies whose X-Forwarded-For is believed;
    # empty means the connecting address is the client's.
    trusted_proxies: tuple[str, ...] = field(
        default_factory=lambda: _list(_env("CXM_TRUSTED_PROXIES", ""))
    )
    # Origins allowed to frame the public survey pages (their embed snippet is an iframe);
    # every other page refuses framing.
    frame_ancestors: tuple[str, ...] = field(
        default_factory=lambda: _list(_env("CXM_FRAME_ANCESTORS", "*"))
    )
    # Customer traits beyond name, email, phone and address that are personal data.
    personal_traits: tuple[str, ...] = field(
        default_factory=lambda: _list(_env("CXM_PERSONAL_TRAITS", ""))
    )
    # Metric slices with fewer answers are suppressed for roles without personal-data access.
    min_slice_size: int = field(default_factory=lambda: int(_env("CXM_MIN_SLICE_SIZE", "5")))
    # Employee pulse results of groups with fewer respondents are never shown (nor derivable).
    employee_min_group: int = field(
        default_factory=lambda: int(_env("CXM_EMPLOYEE_MIN_GROUP", "5"))
    )
    session_hours: float = field(default_factory=lambda: float(_env("CXM_SESSION_HOURS", "12")))
    # True when CXM_BASE_URL (or an override) named the base URL; False when it is the default.
    base_url_set: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url_set", bool(self.base_url))
        if not self.base_url:
            object.__setattr__(self, "base_url", DEFAULT_BASE_URL)
        if not self.database_url:
            url = _env("CXM_DATABASE_URL", f"duckdb:///{self.data_dir / 'cxm.duckdb'}")
            object.__setattr__(self, "database_url", url)


def link_base(settings: Settings, reached_at: str) -> str:
    """The base of links shown on a page: CXM_BASE_URL when set, else the address the request
    reached the server at (``reached_at``, e.g. ``http://host:8101/``), without a final slash."""
    return (settings.base_url if settings.base_url_set else reached_at).rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
