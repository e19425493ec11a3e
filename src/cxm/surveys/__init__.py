"""Surveys: definitions, distribution, triggers, contact-fatigue rules, response pages, responses."""
