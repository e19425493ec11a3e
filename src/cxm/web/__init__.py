"""The web service: app factory, pages, and the REST API assembled from each domain's router."""
