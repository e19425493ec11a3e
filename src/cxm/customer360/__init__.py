"""Customer 360: one customer's profile and timeline across domains, and privacy requests."""
