"""HTTP routes and their dependencies."""

API_PREFIX = "/api/v1"
"""Routers carry the full prefix themselves (rather than getting it from include_router) so
each route's own path is the full template that metrics label requests with."""
