"""Throwaway PostgreSQL databases: each test session, SDK module and cluster test module
gets an empty one of its own, so concurrent runs never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


def _sa_url(conninfo: str, dbname: str) -> str:
    base = conninfo.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{dbname}"


def create_pg_database(admin_url: str) -> str:
    name = f"lrlab_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def temporary_pg_database(admin_url: str) -> Iterator[str]:
    """SQLAlchemy URL of an empty database that is dropped on exit."""
    name = create_pg_database(admin_url)
    try:
        yield _sa_url(admin_url, name)
    finally:
        drop_pg_database(admin_url, name)
