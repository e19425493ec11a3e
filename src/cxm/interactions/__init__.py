"""Interactions: the append-only log of everything a customer did at any touchpoint."""
