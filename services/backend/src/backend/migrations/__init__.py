"""Alembic scripts; shipped inside the package so wheels and images can migrate."""
