"""Metrics: one company-wide definition per CX metric, computed in Ibis on any engine."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cxm.metrics.definitions import Metric, load
    from cxm.metrics.service import Weighting, compute, record_alerts, set_target

__all__ = ["Metric", "Weighting", "compute", "load", "record_alerts", "set_target"]
# Imported on first use, so that 'cxm metrics --help' does not load pandas, scipy and Ibis.
_HOME = {"Metric": "definitions", "load": "definitions", "Weighting": "service",
         "compute": "service", "record_alerts": "service", "set_target": "service"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'cxm.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cxm.metrics.{_HOME[name]}"), name)
