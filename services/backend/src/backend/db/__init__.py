"""Database layer: models, engines/sessions and the Alembic migration API."""
