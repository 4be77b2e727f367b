"""Throwaway PostgreSQL databases for tests (import it as ``from databases import new_database``: pytest puts
``tests/`` on the path)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def new_database(postgres_url: str) -> Iterator[str]:
    """A database of its own beside ``postgres_url``'s, dropped afterwards: for state that lives in fixed
    schemas (the online feature store), which tests sharing one database would trip over."""
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    name = f"stackml_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
