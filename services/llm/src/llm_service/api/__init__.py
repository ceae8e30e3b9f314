"""HTTP routes: analysis under /v1, health and metrics at the root."""
