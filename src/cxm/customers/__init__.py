"""Customers: profiles, identities, identity resolution, customer 360."""
