"""Surveys: definitions, distribution, triggers, contact rules, response pages, responses."""
