"""The Jinja2 environment of the pages, with the signed-in user and CSRF token at hand."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from cxm.names import sla_state
from cxm.web.charts import period_label
from cxm.web.names import role_name

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["period"] = period_label
templates.env.filters["role"] = role_name
templates.env.filters["sla"] = sla_state
