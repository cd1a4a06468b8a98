"""Rate limits hold across gunicorn workers: their counts live in the shared database."""

import time

import pytest

from tests.reliability.server import running_server

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 5
WORKERS = 3


@pytest.fixture
def limited_server(tmp_path, server_key):
    """Three workers, 5 per day of each limit (a day window: no boundary mid-test)."""
    seconds_left_today = 86400 - time.time() % 86400
    if seconds_left_today < 60:
        time.sleep(seconds_left_today + 1)
    rate = f"{LIMIT}/day"
    with running_server(
        tmp_path, WEB_CONCURRENCY=str(WORKERS), RATE_LIMIT_WRITES=rate,
        RATE_LIMIT_AUTH_FAILURES=rate,
    ) as server:  # fmt: skip
        assert len(server.wait_for_workers(WORKERS)) == WORKERS
        yield server


def assert_rate_limited(reply):
    assert reply.status == 429, reply.body
    assert reply.json()["error"]["code"] == "RATE_LIMITED"
    assert 0 < int(reply.headers["Retry-After"]) <= 86400


def test_limits_hold_across_workers(limited_server, server_key, user, other_user):
    def create(who):
        headers = {
            "Authorization": f"Bearer {server_key.token_for(who)}",
            "Content-Type": "application/json",
        }
        return limited_server.request("POST", "/api/tasks", headers=headers, body='{"title": "x"}')

    # Writes per user. A new connection per request: the kernel spreads them over workers.
    assert [create(user).status for _ in range(8)] == [201] * LIMIT + [429] * 3
    assert_rate_limited(create(user))
    assert create(other_user).status == 201  # another user has writes left
    token = {"Authorization": f"Bearer {server_key.token_for(user)}"}
    assert limited_server.request("GET", "/api/tasks", headers=token).json()["total"] == LIMIT

    # Authentication failures per IP (last: once blocked, this IP gets only 429s).
    bad = {"Authorization": "Bearer forged.token.value"}
    statuses = [limited_server.request("GET", "/api/tasks", headers=bad).status for _ in range(12)]
    assert statuses == [401] * LIMIT + [429] * (12 - LIMIT)
    assert_rate_limited(limited_server.request("GET", "/api/tasks", headers=bad))
