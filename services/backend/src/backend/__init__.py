"""Meeting API: FastAPI routes, SQLAlchemy models and Alembic migrations."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mi-backend")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
