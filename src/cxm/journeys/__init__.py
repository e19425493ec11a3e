"""Journeys: how customers move across touchpoints and departments."""
