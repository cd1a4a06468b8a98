"""accounts' first migration creates Better Auth's tables only where they do not exist yet.

Each test migrates a database of its own, created on the suite's PostgreSQL server
and dropped afterwards, with `manage.py migrate` in a subprocess as a deploy runs it.
The reference is better_auth_schema.sql: `pg_dump --schema-only` of a database a
real Better Auth 1.7 server created.
"""

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BETTER_AUTH_SCHEMA = (Path(__file__).parent / "better_auth_schema.sql").read_text()
BETTER_AUTH_TABLES = ["user", "session", "account", "verification", "jwks"]

USER_ROWS = """
INSERT INTO "user" (id, name, email, "emailVerified")
    VALUES ('u1', 'Alice', 'alice@example.com', true);
INSERT INTO session (id, "expiresAt", token, "updatedAt", "userId")
    VALUES ('s1', now() + interval '7 days', 'tok1', now(), 'u1');
INSERT INTO account (id, "accountId", "providerId", "userId", password, "updatedAt")
    VALUES ('a1', 'u1', 'credential', 'u1', 'scrypt-hash', now());
INSERT INTO verification (id, identifier, value, "expiresAt")
    VALUES ('v1', 'reset-password:x', 'u1', now() + interval '1 hour');
"""
JWKS_ROW = """
INSERT INTO jwks (id, "publicKey", "privateKey", "createdAt", alg, crv)
    VALUES ('k1', '{"kty":"OKP","crv":"Ed25519","x":"abc"}', '{"ciphertext":"..."}', now(),
            'EdDSA', 'Ed25519');
"""


def _conninfo(dbname: str) -> dict[str, Any]:
    server = connection.settings_dict
    info = {"host": server["HOST"], "port": str(server["PORT"] or 5432), "dbname": dbname}
    info |= {key: server[key.upper()] for key in ("user", "password") if server[key.upper()]}
    return info


def _connect(dbname: str) -> psycopg.Connection:
    return psycopg.connect(**_conninfo(dbname), autocommit=True)


def _url(dbname: str) -> str:
    info = _conninfo(dbname)
    credentials = quote(info.get("user", ""), safe="")
    if info.get("password"):
        credentials += ":" + quote(info["password"], safe="")
    return f"postgresql://{credentials}@{info['host']}:{info['port']}/{dbname}"


@pytest.fixture
def new_database() -> Iterator[Callable[[], str]]:
    """Creates empty databases on the test server; drops them when the test ends."""
    maintenance = connection.settings_dict["NAME"]
    created: list[str] = []

    def create() -> str:
        name = f"migration_test_{uuid.uuid4().hex[:12]}"
        with _connect(maintenance) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return name

    yield create
    with _connect(maintenance) as admin:
        for name in created:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def migrate(database_url: str, *target: str) -> None:
    """`manage.py migrate` (to `target`: app and migration, if given) in a subprocess."""
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", *target, "--noinput"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def describe(dbname: str) -> dict[str, list[tuple]]:
    """Better Auth's tables as PostgreSQL sees them: columns, constraints, indexes."""
    with _connect(dbname) as conn:
        columns = conn.execute(
            """
            SELECT table_name, ordinal_position, column_name, data_type, is_nullable,
                   column_default
            FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = ANY(%s)
            ORDER BY 1, 2
            """,
            [BETTER_AUTH_TABLES],
        ).fetchall()
        constraints = conn.execute(
            """
            SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s)
            ORDER BY 1, 2
            """,
            [BETTER_AUTH_TABLES],
        ).fetchall()
        indexes = conn.execute(
            """
            SELECT tablename, indexname, indexdef FROM pg_indexes
            WHERE schemaname = 'public' AND tablename = ANY(%s)
            ORDER BY 1, 2
            """,
            [BETTER_AUTH_TABLES],
        ).fetchall()
    return {"columns": columns, "constraints": constraints, "indexes": indexes}


def contents(dbname: str, tables: list[str] = BETTER_AUTH_TABLES) -> dict[str, list[tuple]]:
    with _connect(dbname) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
            ).fetchall()
            for table in tables
        }


def better_auth_database(new_database: Callable[[], str], *extra_sql: str) -> str:
    """A database as Better Auth leaves it: its real schema (plus `extra_sql`)."""
    name = new_database()
    with _connect(name) as conn:
        conn.execute(BETTER_AUTH_SCHEMA)  # pg_dump output: empties this session's search_path
    with _connect(name) as conn:
        for statement in extra_sql:
            conn.execute(statement)
    return name


def test_empty_database_gets_exactly_better_auths_tables(new_database):
    reference = better_auth_database(new_database)
    fresh = new_database()

    migrate(_url(fresh))

    assert describe(fresh) == describe(reference)
    assert len(describe(fresh)["columns"]) == 7 + 8 + 13 + 6 + 7


def test_database_better_auth_manages_is_left_untouched(new_database):
    # `role` is a column Better Auth's admin plugin adds: Django must not notice it.
    existing = better_auth_database(
        new_database, 'ALTER TABLE "user" ADD COLUMN role text', USER_ROWS, JWKS_ROW
    )
    schema_before, rows_before = describe(existing), contents(existing)

    migrate(_url(existing))

    assert describe(existing) == schema_before
    assert contents(existing) == rows_before
    with _connect(existing) as conn:
        applied = conn.execute("SELECT name FROM django_migrations WHERE app = 'accounts'")
        assert [row[0] for row in applied] == ["0001_initial"]
        # The service's own table now hangs off Better Auth's users.
        references = conn.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint "
            "WHERE conrelid = 'task'::regclass AND contype = 'f'"
        ).fetchall()
        assert references == [('"user"',)]


def test_only_missing_tables_are_created(new_database):
    # Better Auth without its jwt plugin has no jwks table yet.
    reference = better_auth_database(new_database)
    existing = better_auth_database(new_database, "DROP TABLE jwks", USER_ROWS)
    present = [table for table in BETTER_AUTH_TABLES if table != "jwks"]
    rows_before = contents(existing, present)

    migrate(_url(existing))

    assert describe(existing) == describe(reference)
    assert contents(existing, present) == rows_before


def test_embedded_sqlite_default_gets_the_tables_too(tmp_path):
    database = tmp_path / "db.sqlite3"

    migrate(f"sqlite:///{database}")

    with sqlite3.connect(database) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        session_columns = [row[1] for row in conn.execute('PRAGMA table_info("session")')]
    assert set(BETTER_AUTH_TABLES) <= tables
    assert session_columns == [
        "id", "expiresAt", "token", "createdAt", "updatedAt", "ipAddress", "userAgent", "userId",
    ]  # fmt: skip
