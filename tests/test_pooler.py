"""Behind a transaction pooler (Debian's PgBouncer, pool_mode=transaction), with default
settings: the timeouts still hold, nothing leaks into other clients' transactions,
`migrate` works, and no request waits for the database past its bound."""

import contextlib
import copy
import logging
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import anyio
import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection, transaction
from django.db.backends.postgresql import base as postgresql_base
from mcp import Client

from config.postgresql.base import failure_cause, is_direct
from mcp_server.auth import stdio_token
from mcp_server.server import server as mcp_server
from tests.factories import TaskFactory
from tests.pgbouncer import running_pgbouncer, through_pgbouncer
from tests.tokens import app_token

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as in production


@pytest.fixture
def pooled(pgbouncer):
    with through_pgbouncer(pgbouncer):
        yield pgbouncer


@pytest.fixture
def one_server_connection():
    """A PgBouncer with a single server connection: every client takes turns on it."""
    db = connection.settings_dict
    bouncer_cm = running_pgbouncer(db["HOST"], int(db["PORT"]), default_pool_size=1)
    with bouncer_cm as bouncer, through_pgbouncer(bouncer):
        yield bouncer


def _show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_connections_really_go_through_pgbouncer(pooled):
    connection.ensure_connection()
    assert connection.connection.info.port == pooled.port
    clients = pooled.admin("SHOW CLIENTS")
    assert clients, "PgBouncer sees no client"


def test_session_settings_hold_in_autocommit_and_in_transactions(pooled):
    assert (_show("statement_timeout"), _show("random_page_cost")) == ("5s", "1.1")
    with transaction.atomic():
        assert _show("statement_timeout") == "5s"
        assert _show("idle_in_transaction_session_timeout") == "15s"


def test_settings_never_leak_into_another_clients_transaction(one_server_connection):
    """Same server connection, another application (e.g. Better Auth): server defaults."""
    with transaction.atomic():
        assert _show("statement_timeout") == "5s"
    assert _show("statement_timeout") == "5s"
    with psycopg.connect(one_server_connection.url(connection.settings_dict["NAME"])) as other:
        assert other.execute("SHOW statement_timeout").fetchone() == ("0",)
        assert other.execute("SHOW random_page_cost").fetchone() == ("4",)


@contextmanager
def connection_options(**changes):
    """The default connection, reconnected with these OPTIONS (settings.py's are put back)."""
    options = connection.settings_dict["OPTIONS"]
    saved = copy.deepcopy(options)
    connection.close()
    options.update(changes)
    try:
        yield
    finally:
        connection.close()
        options.clear()
        options.update(saved)


def test_a_statement_past_the_timeout_is_cancelled_through_the_pooler(pooled):
    faster = {**connection.settings_dict["OPTIONS"]["session_settings"], "statement_timeout": 200}
    with connection_options(session_settings=faster):
        with pytest.raises(OperationalError) as raised, connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")
        assert getattr(raised.value.__cause__, "sqlstate", None) == "57014"  # query_canceled
    assert _show("statement_timeout") == "5s"


def test_session_scope_sets_them_once_per_direct_connection():
    with connection_options(session_settings_scope="session"):
        assert _show("statement_timeout") == "5s"
        assert _show("idle_in_transaction_session_timeout") == "15s"
        assert type(connection.connection.cursor()) is postgresql_base.Cursor  # no prefix


def _conninfo(host: object = None) -> str:
    """A connection of its own to the test database (at `host`: a socket folder or an
    address), as another process would open one."""
    db = connection.settings_dict
    return f"host={host or db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _get_task_and_search(client, user, times: int = 8) -> None:
    """More runs than psycopg's prepare_threshold (5): what is prepared, is by then."""
    task = TaskFactory(user=user, title="milk", priority="high")
    for _ in range(times):
        assert client.get(f"/api/tasks/{task.pk}").status_code == 200
        assert client.get("/api/tasks?search=milk").json()["total"] == 1
        assert client.get("/api/tasks?priority=high").json()["total"] == 1
        assert client.get("/api/tasks?limit=10").json()["total"] == 1


def test_a_direct_connection_prepares_what_every_request_runs(jwt_client, user):
    _get_task_and_search(jwt_client, user)
    assert connection.connection.direct is True
    assert type(connection.connection.cursor()) is postgresql_base.Cursor  # no SET LOCALs
    assert (_show("statement_timeout"), _show("random_page_cost")) == ("5s", "1.1")  # SET once
    statements = _prepared_statements()
    assert any('FROM "user" WHERE' in sql for sql in statements)  # authentication's lookup
    assert any('FROM "task" WHERE' in sql and "LIMIT" not in sql for sql in statements)
    assert any('FROM "task" WHERE' in sql and "LIMIT" in sql for sql in statements)  # a page
    # A search's or a filter's best plan depends on how many tasks match: never prepared.
    assert not [sql for sql in statements if "LIKE" in sql.upper() or 'priority" = ' in sql]


def test_through_a_pooler_nothing_is_prepared(pooled, jwt_client, user):
    _get_task_and_search(jwt_client, user)
    assert connection.connection.direct is False
    assert _prepared_statements() == []


def test_transaction_scope_prepares_nothing_even_directly(jwt_client, user):
    with connection_options(session_settings_scope="transaction"):
        _get_task_and_search(jwt_client, user)
        assert connection.connection.direct is False
        assert _prepared_statements() == []


@contextmanager
def psycopg_pool(max_size: int):
    """The default connection from psycopg's pool (DATABASE_POOL_MAX_SIZE), then as before."""
    saved_age = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistence
    try:
        with connection_options(pool={"min_size": 1, "max_size": max_size}):
            try:
                yield
            finally:
                connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = saved_age


@pytest.mark.parametrize("pool", [False, True], ids=["persistent", "psycopg_pool"])
def test_a_column_type_changed_under_a_prepared_statement_replaces_the_connection(pool):
    """A migration during a rolling deploy: old workers' prepared statements then fail
    ("cached plan must not change result type") until their connection is replaced; a
    pool of one connection must not lend the broken one again."""
    from django.db import NotSupportedError

    from config.errors import is_schema_error
    from config.sql import prepared_cursor

    def probe() -> tuple:
        with prepared_cursor("default") as cursor:
            cursor.execute("SELECT name FROM plan_probe WHERE name = %s", ["a"])
            return cursor.fetchone()

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE plan_probe (name varchar(10)); INSERT INTO plan_probe VALUES ('a')"
        )
    try:
        with psycopg_pool(max_size=1) if pool else contextlib.nullcontext():
            assert [probe() for _ in range(6)] == [("a",)] * 6  # prepared from the sixth run
            assert any("plan_probe" in sql for sql in _prepared_statements())
            with psycopg.connect(_conninfo(), autocommit=True) as other:  # another process's
                other.execute("ALTER TABLE plan_probe ALTER name TYPE text")
            with pytest.raises(NotSupportedError) as raised:
                probe()
            assert is_schema_error(raised.value)  # a 503 for the client, as any schema mismatch
            assert not connection.is_usable()
            close_old_connections()  # the end of the request: Django lets the connection go
            assert probe() == ("a",)  # on a new connection
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE plan_probe")


def test_a_feature_not_supported_elsewhere_is_not_a_schema_mismatch():
    from django.db import NotSupportedError

    from config.errors import is_schema_error

    with pytest.raises(NotSupportedError) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM (VALUES (1)) AS v(n) GROUP BY n FOR UPDATE")
    assert getattr(raised.value.__cause__, "sqlstate", None) == "0A000"
    assert not is_schema_error(raised.value)  # a bug: 500, not a deploy problem's 503


def test_is_direct_only_where_the_server_sees_the_address_dialed(postgres_server, pgbouncer):
    if postgres_server is None:
        pytest.fail("needs the PostgreSQL this run started: unset TEST_DATABASE_URL")
    over_socket, over_tcp = _conninfo(postgres_server.root), _conninfo("127.0.0.1")
    with psycopg.connect(over_socket) as socket, psycopg.connect(over_tcp) as tcp:
        assert (is_direct(socket), is_direct(tcp)) == (True, True)
    with psycopg.connect(pgbouncer.url(connection.settings_dict["NAME"])) as pooled:
        assert is_direct(pooled) is False


def test_a_request_stuck_in_the_pooler_queue_is_a_503_at_the_bound(
    one_server_connection, auth_client, settings, caplog
):
    settings.DATABASE_REQUEST_TIMEOUT_MS = 700
    settings.HEALTH_DB_TIMEOUT_MS = 300
    auth_client.get("/api/tasks")  # connected, the server connection returned to the pool
    dbname = connection.settings_dict["NAME"]
    with psycopg.connect(one_server_connection.url(dbname)) as holder:
        holder.execute("SELECT 1")  # an open transaction holds the only server connection
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            response = auth_client.get("/api/tasks")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert 0.6 < elapsed < 1.5, elapsed
        assert "DeadlineExceeded" in caplog.text
        close_old_connections()  # what Django runs after each real request (not the test client)
        started = time.monotonic()
        response = auth_client.get("/health/ready")
        assert (response.status_code, time.monotonic() - started < 1.0) == (503, True)
        close_old_connections()
    assert auth_client.get("/api/tasks").status_code == 200  # a fresh connection, at once


def test_migrate_works_through_the_pooler(pgbouncer):
    dbname = f"migrate_{uuid.uuid4().hex[:8]}"
    direct = connection.settings_dict
    admin_url = f"postgresql://{direct['USER']}@{direct['HOST']}:{direct['PORT']}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    try:
        env = {**os.environ, "DATABASE_URL": pgbouncer.url(dbname), "DJANGO_DEBUG": "true"}
        run = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        with psycopg.connect(pgbouncer.url(dbname)) as conn:
            assert conn.execute("SELECT count(*) FROM task").fetchone() == (0,)
    finally:
        pgbouncer.admin(f'KILL "{dbname}"')  # its server connections, so the drop can go on
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{dbname}"')


def test_the_log_names_the_real_cause_never_a_password(pgbouncer):
    # What the old settings did: libpq `options`, which PgBouncer refuses.
    url = pgbouncer.url(connection.settings_dict["NAME"])
    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(url, options="-c statement_timeout=1000", password="s3cret")
    cause = failure_cause(raised.value)
    assert "unsupported startup parameter: options" in cause, cause
    assert "s3cret" not in cause
    masked = failure_cause(psycopg.OperationalError("postgresql://bob:hunter2@db/x password=p"))
    assert "hunter2" not in masked
    assert "password=p" not in masked


def test_an_mcp_tool_call_is_bounded_like_a_request(one_server_connection, user, settings):
    settings.DATABASE_REQUEST_TIMEOUT_MS = 700
    token = stdio_token.set(app_token(user.id))

    async def list_tasks():
        async with Client(mcp_server) as client:
            return await client.call_tool("list_tasks", {})

    try:
        with psycopg.connect(one_server_connection.url(connection.settings_dict["NAME"])) as holder:
            holder.execute("SELECT 1")  # holds the only server connection
            started = time.monotonic()
            result = anyio.run(list_tasks)
            elapsed = time.monotonic() - started
        assert result.structured_content["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert 0.6 < elapsed < 1.5, elapsed
        assert not anyio.run(list_tasks).is_error  # the pooler's connection is free again
    finally:
        stdio_token.reset(token)
