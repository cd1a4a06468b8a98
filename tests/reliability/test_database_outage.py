"""The database goes away under a running server, then comes back.

While it is down every request that needs it fails fast with 503 SERVICE_UNAVAILABLE
and the error shape (no hang, no HTML, no stack trace) and /health/ready says so; when it
returns, the same
workers serve again without a restart. Runs last (marker `database_outage`): it stops
the suite's own PostgreSQL.
"""

import time

import pytest
from django.db import connection

from tasks.models import IdempotencyKey, Task
from tests.factories import TaskFactory
from tests.reliability.server import running_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.database_outage]

FAIL_FAST_SECONDS = 3.0


@pytest.fixture
def outage(postgres_server):
    """Stop PostgreSQL for the test body; always start it again."""
    if postgres_server is None:
        pytest.skip("needs the PostgreSQL this run started (not TEST_DATABASE_URL)")

    class Outage:
        @staticmethod
        def begin():
            postgres_server.stop()

        @staticmethod
        def end():
            postgres_server.start()
            connection.close()  # this process's connection died with the server

    yield Outage
    if not _database_is_up():
        Outage.end()


def _database_is_up() -> bool:
    try:
        connection.ensure_connection()
        return connection.is_usable()
    except Exception:  # noqa: BLE001 - any failure means "down"
        connection.close()
        return False


def assert_unavailable(reply, what: str) -> None:
    assert reply.status == 503, (what, reply.status, reply.body[:300])
    assert reply.headers["Content-Type"] == "application/json", what
    body = reply.json()
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE", what
    assert body["detail"] == body["error"]["message"], what
    assert b"Traceback" not in reply.body, what
    assert reply.seconds < FAIL_FAST_SECONDS, (what, reply.seconds)


def test_requests_fail_fast_while_the_database_is_down_and_the_service_recovers(
    tmp_path, server_key, user, outage
):
    task = TaskFactory(user=user)
    auth = {"Authorization": f"Bearer {server_key.token_for(user)}"}
    json_auth = {**auth, "Content-Type": "application/json"}
    # Production rate limits on: their counters live in the database too.
    with running_server(
        tmp_path, WEB_CONCURRENCY="2", RATE_LIMIT_WRITES="600/minute",
        RATE_LIMIT_AUTH_FAILURES="60/minute",
    ) as server:  # fmt: skip
        for _ in range(4):  # every worker has a warm, persistent connection
            assert server.request("GET", "/api/tasks", headers=auth).status == 200

        outage.begin()
        requests = [
            ("GET", "/api/tasks", auth, None),
            ("GET", f"/api/{user.pk}/tasks?search=x&sort_by=priority", auth, None),
            ("GET", f"/api/tasks/{task.pk}", auth, None),
            ("POST", "/api/tasks", json_auth, '{"title": "lost?"}'),
            ("POST", "/api/tasks", {**json_auth, "Idempotency-Key": "k1"}, '{"title": "x"}'),
            ("PUT", f"/api/tasks/{task.pk}", json_auth, '{"title": "changed"}'),
            ("PATCH", f"/api/tasks/{task.pk}/complete", auth, None),
            ("DELETE", f"/api/tasks/{task.pk}", auth, None),
            ("GET", "/api/tasks/stats", auth, None),
            ("GET", "/api/me", auth, None),
            ("PUT", "/api/me", json_auth, '{"name": "x"}'),
        ]
        for _ in range(2):  # each worker, and again once its connection is known dead
            for method, path, headers, body in requests:
                reply = server.request(method, path, headers=headers, body=body)
                assert_unavailable(reply, f"{method} {path}")

        ready = server.request("GET", "/health/ready")
        assert (ready.status, ready.json()["database"]) == (503, "error")
        assert ready.seconds < FAIL_FAST_SECONDS
        assert server.request("GET", "/health").status == 200  # alive: no restart needed

        # Without the database: credentials that fail before any query are still a 401
        # (the failure count is skipped, never a 500); the schema needs no database.
        reply = server.request("GET", "/api/tasks", headers={"Authorization": "Bearer a.b.c"})
        assert (reply.status, reply.json()["error"]["code"]) == (401, "AUTH_REQUIRED")
        assert server.request("GET", "/api/schema/?format=json").status == 200

        outage.end()
        deadline = time.monotonic() + 15
        while server.request("GET", "/api/tasks", headers=auth).status != 200:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        assert server.request("GET", "/health/ready").status == 200
        for _ in range(6):  # every worker is back, for reads and writes
            assert server.request("GET", "/api/tasks", headers=auth).status == 200
        reply = server.request("POST", "/api/tasks", headers=json_auth, body='{"title": "after"}')
        assert reply.status == 201, reply.body
        assert b"Traceback" not in server.log.read_bytes()

    # Nothing was half-written during the outage.
    assert set(Task.objects.values_list("title", flat=True)) == {task.title, "after"}
    assert not IdempotencyKey.objects.exists()
    assert Task.objects.get(pk=task.pk).completed is False
