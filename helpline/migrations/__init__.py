"""Alembic migrations, shipped inside the package so that a plain ``pip install .`` can upgrade."""
