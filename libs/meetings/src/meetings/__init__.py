"""The data contract shared by the API, the worker and the operations tooling.

`models` (the tables), `session` (engines and sessions), `migrations` (Alembic scripts and
the API that runs them) and `pipeline` (task and queue names). Nothing here imports a service.
"""
