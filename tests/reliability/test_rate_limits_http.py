"""Rate limits hold across gunicorn workers: their counts live in the shared database."""

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.server import Reply, running_server

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 5
WORKERS = 3
AT_ONCE = 24
ACCESS_FORMAT = "%(p)s %(m)s %(U)s %(s)s"
ACCESS_LINE = re.compile(r"^<(\d+)> (\w+) (\S+) (\d{3})$")


@pytest.fixture
def limited_server(tmp_path, server_key):
    """Three workers, 5 per day of each limit (a day window: no boundary mid-test)."""
    seconds_left_today = 86400 - time.time() % 86400
    if seconds_left_today < 60:
        time.sleep(seconds_left_today + 1)
    rate = f"{LIMIT}/day"
    access_log = tmp_path / "access.log"
    with running_server(
        tmp_path, WEB_CONCURRENCY=str(WORKERS), RATE_LIMIT_WRITES=rate,
        RATE_LIMIT_AUTH_FAILURES=rate,
        # Which worker answered each request: its pid in gunicorn's access log.
        GUNICORN_CMD_ARGS=f"--access-logfile {access_log} --access-logformat '{ACCESS_FORMAT}'",
    ) as server:  # fmt: skip
        assert len(server.wait_for_workers(WORKERS)) == WORKERS
        yield server


def answered_by(server, method: str, path: str) -> Counter[tuple[int, int]]:
    """(worker pid, status) of every logged request of `method path`."""
    log = Path(server.env["GUNICORN_CMD_ARGS"].split()[1])
    matches = (ACCESS_LINE.match(line) for line in log.read_text().splitlines())
    return Counter((int(m[1]), int(m[4])) for m in matches if m and (m[2], m[3]) == (method, path))


def at_once(send: Callable[[], Reply]) -> list[int]:
    """Statuses of AT_ONCE requests sent at the same instant, each on its own connection."""
    barrier = threading.Barrier(AT_ONCE)

    def one(_: int) -> int:
        barrier.wait()
        return send().status

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return list(pool.map(one, range(AT_ONCE)))


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


def test_concurrent_hits_on_several_workers_share_one_count(
    limited_server, server_key, user, other_user
):
    token = server_key.token_for(user)
    write = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    statuses = at_once(
        lambda: limited_server.request("POST", "/api/tasks", headers=write, body='{"title": "x"}')
    )
    assert Counter(statuses) == {201: LIMIT, 429: AT_ONCE - LIMIT}
    read = {"Authorization": f"Bearer {token}"}
    assert (
        limited_server.request("GET", "/api/me", headers=read).json()["stats"]["total_tasks"]
        == LIMIT
    )

    bad = {"Authorization": "Bearer forged.token.value"}
    statuses = at_once(lambda: limited_server.request("GET", "/api/tasks", headers=bad))
    assert Counter(statuses) == {401: LIMIT, 429: AT_ONCE - LIMIT}

    time.sleep(0.5)  # gunicorn writes the access line after the response
    for method, path in [("POST", "/api/tasks"), ("GET", "/api/tasks")]:
        answers = answered_by(limited_server, method, path)
        assert sum(answers.values()) == AT_ONCE
        workers = {pid for pid, _ in answers}
        assert len(workers) > 1, answers  # the one count was shared by several processes
