"""HTTP routes and their dependencies."""

API_PREFIX = "/api/v1"
"""The versioned prefix every `/api` router declares."""
