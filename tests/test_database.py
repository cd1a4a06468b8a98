import psycopg
import pytest
from django.db import connection


def test_suite_runs_against_postgresql(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
    print(f"\nrunning against: {version}")
    assert connection.vendor == "postgresql"
    assert version.startswith("PostgreSQL")


def _terminate_from_another_connection(pid: int) -> None:
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    finally:
        other.close()


def test_health_check_sends_nothing_to_the_server(transactional_db, tmp_path):
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with open(tmp_path / "libpq.trace", "w") as trace:
        pgconn.trace(trace.fileno())  # libpq logs every protocol message it sends or receives
        try:
            assert connection.is_usable()
        finally:
            pgconn.untrace()
    assert (tmp_path / "libpq.trace").read_text() == ""


def test_health_check_notices_a_connection_the_server_ended(transactional_db):
    connection.ensure_connection()
    assert connection.is_usable()
    _terminate_from_another_connection(connection.connection.info.backend_pid)
    assert not connection.is_usable()

    # What Django does at the start of a request: the dead connection is replaced.
    connection.health_check_done = False  # type: ignore[attr-defined]  # Django 5.1+, not in stubs
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_health_check_refuses_an_aborted_transaction(transactional_db):
    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = False
    try:
        with raw.cursor() as cursor:
            cursor.execute("SELECT 1")
            with pytest.raises(psycopg.errors.DivisionByZero):
                cursor.execute("SELECT 1/0")
        assert not connection.is_usable()
    finally:
        raw.rollback()
        raw.autocommit = True
    assert connection.is_usable()


def test_sessions_price_random_reads_for_ssds(db):
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone() == ("1.1",)
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("5s",)
