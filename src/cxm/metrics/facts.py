"""Metric facts other domains read: the alerts raised when a metric crosses its threshold."""

from __future__ import annotations

from cxm.metrics.tables import metric_alerts

__all__ = ["metric_alerts"]
