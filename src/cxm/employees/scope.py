"""What each principal may read of the employee directory (one helper, used everywhere)."""

from __future__ import annotations

from dataclasses import dataclass

from cxm.errors import Forbidden
from cxm.org.auth import Principal


@dataclass(frozen=True)
class DirectoryScope:
    """``department`` None: the whole directory; otherwise that department's employees."""

    department: str | None


def directory_scope(who: Principal) -> DirectoryScope:
    """admin and cx_lead (and HR, who sign in as cx_lead) read everyone; a manager reads their
    department; agents and viewers read no one's record (pulse results stay open to them in
    aggregate, under the confidentiality rule)."""
    if who.role in ("admin", "cx_lead"):
        return DirectoryScope(None)
    if who.role == "manager" and who.department_key:
        return DirectoryScope(who.department_key)
    raise Forbidden(
        "the employee directory is open to admins, the CX lead and managers "
        "(their own department); pulse results are open in aggregate"
    )
