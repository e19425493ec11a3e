"""Metrics: one company-wide definition per CX metric, computed in Ibis on any engine."""

from cxm.metrics.definitions import Metric, load
from cxm.metrics.service import Weighting, compute, record_alerts, set_target

__all__ = ["Metric", "Weighting", "compute", "load", "record_alerts", "set_target"]
