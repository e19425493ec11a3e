"""Security headers on every response: CSP without inline scripts, framing, sniffing, referrer.

OWASP ASVS 14.4 asks for these on every response. Scripts come only from our own origin
(``/static``), so an injected ``<script>`` or ``onload=`` never runs. Public survey pages may be
framed (their embed snippet is an iframe) by the origins in ``CXM_FRAME_ANCESTORS``; every
other page and the API refuse framing outright.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'"
)
SURVEY_PREFIX = "/s/"
# Swagger UI's assets come from the jsDelivr CDN (the page is the only one that needs it).
SWAGGER_CDN = "https://cdn.jsdelivr.net"


class SecurityHeaders:
    """ASGI middleware that adds the headers to every HTTP response (errors included)."""

    def __init__(self, app: ASGIApp, frame_ancestors: tuple[str, ...] = ("*",)) -> None:
        self.app = app
        self.frame_ancestors = " ".join(frame_ancestors) or "'none'"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        survey = str(scope.get("path", "")).startswith(SURVEY_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    ancestors = self.frame_ancestors if survey else "'none'"
                    headers["Content-Security-Policy"] = f"{CSP}; frame-ancestors {ancestors}"
                if not survey:
                    headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI with a per-response nonce on its own scripts (no 'unsafe-inline')."""
    nonce = secrets.token_urlsafe(16)
    page = get_swagger_ui_html(openapi_url="/api/openapi.json", title="cxm API")
    html = bytes(page.body).decode().replace("<script", f'<script nonce="{nonce}"')
    policy = (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}' {SWAGGER_CDN}; "
        f"style-src 'self' 'unsafe-inline' {SWAGGER_CDN}; img-src 'self' data: {SWAGGER_CDN} "
        "https://fastapi.tiangolo.com; connect-src 'self'; object-src 'none'; "
        "base-uri 'self'; frame-ancestors 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})
