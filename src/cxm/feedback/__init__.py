"""Feedback explorer: survey responses with their scores, comments, sentiment and themes."""
