"""``POST /api/v1/commands``: a ``cxm`` command run by the server for its own machine's CLI.

While ``cxm serve`` owns the embedded DuckDB file no other process can open it, so a command
typed on the same machine sends its arguments here and the server runs it in-process (the
runner is set on ``app.state.command_runner`` by ``cxm serve``). Only the server's local key
(the one in DATA_DIR/server.json, readable by its owner only) may call it, and only from this
machine: any other key, even an admin's, is refused. Not part of the public API.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from cxm.errors import responses
from cxm.org.auth import Principal
from cxm.org.security import require

router = APIRouter(tags=["cli"])


class CommandRun(BaseModel):
    argv: list[str] = Field(min_length=1, description="the arguments after 'cxm'")
    cwd: str = Field(description="the caller's folder: relative paths are taken from there")
    stdin: str | None = Field(None, description="piped input, for an argument '-'")
    answers: list[str] = Field(default_factory=list, description="what was typed at prompts")
    width: int | None = Field(None, ge=20, le=10000, description="the caller's terminal width")
    color_system: str | None = Field(None, description="the caller's colours; none when piped")


class CommandResult(BaseModel):
    exit_code: int
    stdout: str
    stderr: str


def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.post("/commands", include_in_schema=False, responses=responses(400, 403, 404, 422))
def run_command(
    body: CommandRun, request: Request, who: Principal = Depends(require("admin"))
) -> CommandResult:
    """Run ``cxm ARGV`` in this server and answer what it printed and its exit code."""
    runner: Any = getattr(request.app.state, "command_runner", None)
    local: str | None = getattr(request.app.state, "local_cli_token", None)
    if runner is None or local is None:
        raise HTTPException(
            404, "this server runs no cxm commands: only 'cxm serve' on an embedded store does"
        )
    # The key itself, not merely its admin scope: compared in constant time.
    if not hmac.compare_digest(_bearer(request).encode(), local.encode()):
        raise HTTPException(
            403,
            "only the server's own local key (DATA_DIR/server.json) may run cxm commands; "
            "use the API's other routes with this key",
        )
    if not _loopback(request):
        raise HTTPException(403, "cxm commands are run only for clients on this machine")
    ran = runner(body.argv, body.cwd, body.stdin, body.answers, body.width, body.color_system)
    return CommandResult(**ran)
