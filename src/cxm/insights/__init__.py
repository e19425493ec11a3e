"""Insights: experience signals on the interaction log and what they cost, per department."""
