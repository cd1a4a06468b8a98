"""Limits on every door, over real HTTP: gunicorn and the MCP endpoint share one set of
counters (ratelimit/), valid credentials are never refused because others failed from
the same address, IPv6 counts per /64, the admin sign-in is throttled, the task quota
holds on both transports, and the MCP endpoint's edges answer JSON.

Both servers sit "behind one proxy" (RATE_LIMIT_NUM_PROXIES=1), so each test plays
its own clients through X-Forwarded-For. Limits are per day: no window ends mid-test.
"""

import json
import re
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.contrib.auth.models import User as StaffUser

from tasks.models import Task
from tests.factories import TaskFactory, UserFactory
from tests.reliability.server import Server, running_mcp_server, running_server
from tests.tokens import SigningKey

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_FAILURES, WRITES, QUOTA, ADMIN_CLIENT, ADMIN_ACCOUNT = 5, 8, 3, 3, 4
BAD = "Bearer forged.token.value"


@pytest.fixture(scope="module")
def limited(server_key, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    """gunicorn and the MCP endpoint with small per-day limits, behind one proxy."""
    seconds_left_today = 86400 - time.time() % 86400
    if seconds_left_today < 120:
        time.sleep(seconds_left_today + 1)
    log_dir = tmp_path_factory.mktemp("limited")
    env = {
        "RATE_LIMIT_NUM_PROXIES": "1",
        "RATE_LIMIT_AUTH_FAILURES": f"{AUTH_FAILURES}/day",
        "RATE_LIMIT_WRITES": f"{WRITES}/day",
        "RATE_LIMIT_ADMIN_LOGIN_CLIENT": f"{ADMIN_CLIENT}/day",
        "RATE_LIMIT_ADMIN_LOGIN_ACCOUNT": f"{ADMIN_ACCOUNT}/day",
        "TASK_QUOTA_PER_USER": str(QUOTA),
        "LOG_LEVEL": "INFO",
    }
    with (
        running_server(log_dir, **env) as rest,  # type: ignore[arg-type]  # str values only
        running_mcp_server(log_dir, rest) as mcp,
    ):
        yield rest, mcp


@pytest.fixture
def rest(limited) -> Server:
    return limited[0]


@pytest.fixture
def mcp(limited) -> Server:
    return limited[1]


def get(server: Server, path: str, client: str, authorization: str = BAD):
    headers = {"Authorization": authorization, "X-Forwarded-For": client}
    return server.request("GET", path, headers=headers)


def write(server: Server, method: str, path: str, client: str, token: str, body: dict):
    headers = {
        "Authorization": f"Bearer {token}", "X-Forwarded-For": client,
        "Content-Type": "application/json",
    }  # fmt: skip
    return server.request(method, path, headers=headers, body=json.dumps(body))


def mcp_call(mcp: Server, authorization: str, name: str, client: str, **arguments):
    """One JSON-RPC tools/call; returns the reply (status, body)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}  # fmt: skip
    headers = {
        "Authorization": authorization, "X-Forwarded-For": client,
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }  # fmt: skip
    return mcp.request("POST", "/mcp", headers=headers, body=json.dumps(body))


def tool_result(reply) -> dict:
    assert reply.status == 200, reply.body[:300]
    return reply.json()["result"]


def tool_error(reply) -> dict:
    result = tool_result(reply)
    assert result["isError"], result
    return result["structuredContent"]["error"]


def assert_json_error(reply, status: int) -> dict:
    assert reply.status == status, reply.body[:300]
    assert reply.headers["Content-Type"].startswith("application/json"), reply.body[:300]
    body = reply.json()
    assert body["detail"] == body["error"]["message"]
    return body["error"]


class TestFailedAuthentication:
    def test_valid_credentials_are_served_while_their_address_is_locked_out(
        self, rest, mcp, server_key: SigningKey
    ):
        client = "203.0.113.10"
        statuses = [get(rest, "/api/tasks", client).status for _ in range(AUTH_FAILURES + 3)]
        assert statuses == [401] * AUTH_FAILURES + [429] * 3
        error = assert_json_error(get(rest, "/api/tasks", client), 429)
        assert error["code"] == "RATE_LIMITED"
        user = UserFactory()
        token = f"Bearer {server_key.token_for(user)}"
        assert get(rest, "/api/tasks", client, token).status == 200  # same address, served
        assert tool_result(mcp_call(mcp, token, "list_tasks", client))["structuredContent"][
            "total"
        ] == 0  # fmt: skip
        # Health probes are never limited, whatever they carry.
        assert get(rest, "/health", client).status == 200
        assert get(rest, "/health/ready", client).status == 200

    def test_mcp_counts_failures_with_the_rest_api_counter(self, rest, mcp):
        client = "203.0.113.20"
        statuses = [get(rest, "/api/me", client).status for _ in range(3)]
        statuses += [mcp_call(mcp, BAD, "list_tasks", client).status for _ in range(2)]
        assert statuses == [401] * AUTH_FAILURES
        assert_json_error(mcp_call(mcp, BAD, "list_tasks", client), 429)
        assert get(rest, "/api/me", client).status == 429
        reply = mcp_call(mcp, BAD, "list_tasks", client)
        assert 0 < int(reply.headers["Retry-After"]) <= 86400

    def test_80_bad_tokens_over_mcp_meet_the_limit(self, mcp):
        statuses = [mcp_call(mcp, BAD, "list_tasks", "203.0.113.30").status for _ in range(80)]
        assert statuses == [401] * AUTH_FAILURES + [429] * (80 - AUTH_FAILURES)

    def test_bad_tokens_over_the_mcp_of_the_api_port_count_once(self, rest):
        # /mcp mounted in Django: the MCP app counts the failure, the REST middleware not again.
        statuses = [mcp_call(rest, BAD, "list_tasks", "203.0.113.31").status for _ in range(8)]
        assert statuses == [401] * AUTH_FAILURES + [429] * (8 - AUTH_FAILURES)

    def test_ipv6_clients_are_counted_per_64(self, rest):
        for n in range(AUTH_FAILURES):
            assert get(rest, "/api/tasks", f"2001:db8:a:b::{n + 1:x}").status == 401
        assert get(rest, "/api/tasks", "2001:db8:a:b:ffff:1:2:3").status == 429  # same /64
        assert get(rest, "/api/tasks", "2001:db8:a:c::1").status == 401  # the next /64


class TestWritesAndQuota:
    def test_writes_over_mcp_and_rest_share_one_counter(self, rest, mcp, server_key):
        user = UserFactory()
        task = TaskFactory(user=user)
        token = server_key.token_for(user)
        client = "198.51.100.40"
        for _ in range(WRITES - 2):
            reply = write(rest, "PATCH", f"/api/tasks/{task.pk}/complete", client, token, {})
            assert reply.status == 200
        for _ in range(2):
            assert not tool_result(
                mcp_call(mcp, f"Bearer {token}", "complete_task", client, task_id=str(task.pk))
            )["isError"]
        error = tool_error(
            mcp_call(mcp, f"Bearer {token}", "complete_task", client, task_id=str(task.pk))
        )
        assert error["code"] == "RATE_LIMITED"
        assert error["details"]["retry_after"] > 0
        reply = write(rest, "PATCH", f"/api/tasks/{task.pk}/complete", client, token, {})
        assert_json_error(reply, 429)
        # Reads are not writes.
        assert not tool_result(mcp_call(mcp, f"Bearer {token}", "list_tasks", client))["isError"]

    def test_the_task_quota_holds_over_rest_and_mcp(self, rest, mcp, server_key):
        user = UserFactory()
        token = server_key.token_for(user)
        client = "198.51.100.50"
        created = [
            write(rest, "POST", "/api/tasks", client, token, {"title": f"t{n}"})
            for n in range(QUOTA)
        ]
        assert [reply.status for reply in created] == [201] * QUOTA
        error = assert_json_error(
            write(rest, "POST", "/api/tasks", client, token, {"title": "one more"}), 409
        )
        assert error["code"] == "QUOTA_EXCEEDED"
        assert str(QUOTA) in error["message"]
        error = tool_error(mcp_call(mcp, f"Bearer {token}", "create_task", client, title="x"))
        assert error["code"] == "QUOTA_EXCEEDED"
        assert Task.objects.filter(user=user).count() == QUOTA
        first = created[0].json()["task"]["id"]
        assert write(rest, "DELETE", f"/api/tasks/{first}", client, token, {}).status == 204
        reply = mcp_call(mcp, f"Bearer {token}", "create_task", client, title="fits again")
        assert not tool_result(reply)["isError"]


class TestMcpEdges:
    @pytest.fixture
    def token(self, server_key):
        return f"Bearer {server_key.token_for(UserFactory())}"

    @pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
    def test_other_methods_than_post_are_a_prompt_405(self, mcp, token, method):
        headers = {"Authorization": token, "Accept": "text/event-stream, application/json"}
        reply = mcp.request(method, "/mcp", headers=headers, timeout=5)
        assert assert_json_error(reply, 405)["code"] == "METHOD_NOT_ALLOWED"
        assert reply.headers["Allow"] == "POST, OPTIONS"
        assert reply.seconds < 2

    def test_options_is_answered(self, mcp):
        assert mcp.request("OPTIONS", "/mcp").status == 204

    def test_other_paths_are_a_json_404(self, mcp, token):
        reply = mcp.request("POST", "/elsewhere", headers={"Authorization": token}, body="{}")
        assert_json_error(reply, 404)

    def test_a_bad_host_is_json(self, mcp, token):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        headers = {
            "Authorization": token, "Host": "evil.example", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }  # fmt: skip
        reply = mcp.request("POST", "/mcp", headers=headers, body=body)
        assert "Invalid Host header" in assert_json_error(reply, 421)["message"]

    def test_an_oversized_body_is_a_json_413(self, mcp, token):
        headers = {"Authorization": token, "Content-Type": "application/json"}
        reply = mcp.request("POST", "/mcp", headers=headers, body="[" + "1," * 200_000 + "1]")
        assert "bytes" in assert_json_error(reply, 413)["message"]

    def test_duplicate_keys_are_a_json_rpc_parse_error(self, mcp, token):
        headers = {"Authorization": token, "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}  # fmt: skip
        body = '{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "method": "tools/call"}'
        reply = mcp.request("POST", "/mcp", headers=headers, body=body)
        assert reply.status == 400
        assert reply.json()["error"]["code"] == -32700
        assert "duplicate key" in reply.json()["error"]["message"]

    @pytest.mark.parametrize("tool", ["list_tasks", "task_stats"])
    def test_a_20000_word_search_is_a_prompt_validation_error(self, mcp, token, tool):
        words = " ".join(f"w{n}" for n in range(20_000))  # ~130 KB, under the body limit
        reply = mcp_call(mcp, token, tool, "198.51.100.60", search=words)
        error = tool_error(reply)
        assert error["code"] == "VALIDATION_ERROR"
        assert error["message"].startswith("search: At most")
        print(f"\n20,000-word search over MCP {tool}: refused in {reply.seconds * 1000:.0f} ms")
        assert reply.seconds < 5  # it took 73.8 s

    def test_too_many_tags_are_a_validation_error(self, mcp, token):
        reply = mcp_call(
            mcp, token, "list_tasks", "198.51.100.61", tags=[f"t{n}" for n in range(21)]
        )
        error = tool_error(reply)
        assert error["message"] == "tags: At most 20 tags."


class TestAdminSignIn:
    @pytest.fixture
    def admin_user(self):
        return StaffUser.objects.create_superuser("root", "root@example.com", "correct-horse-9")

    @staticmethod
    def sign_in(rest: Server, client: str, username: str, password: str):
        page = rest.request("GET", "/admin/login/", headers={"X-Forwarded-For": client})
        cookie = SimpleCookie(page.headers["Set-Cookie"])["csrftoken"].value
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        assert match, page.body[:300]
        token = match.group(1)
        form = f"csrfmiddlewaretoken={token.decode()}&username={username}&password={password}"
        headers = {"X-Forwarded-For": client, "Cookie": f"csrftoken={cookie}",
                   "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
        return rest.request("POST", "/admin/login/?next=/admin/", headers=headers, body=form)

    def test_a_guessing_client_is_throttled_and_logged(self, rest, admin_user):
        client = "192.0.2.10"
        statuses = [self.sign_in(rest, client, "root", f"guess{n}").status for n in range(5)]
        assert statuses == [200] * ADMIN_CLIENT + [429] * 2
        refused = self.sign_in(rest, client, "root", "correct-horse-9")
        assert refused.status == 429  # a password can be guessed: the client waits
        assert refused.headers["Content-Type"].startswith("text/html")
        assert int(refused.headers["Retry-After"]) > 0
        assert self.sign_in(rest, "192.0.2.11", "root", "correct-horse-9").status == 302
        time.sleep(0.2)
        assert "sign-in failed for username 'root' from client 192.0.2.10" in rest.log_tail(400)

    def test_a_guesser_spread_over_addresses_does_not_lock_the_owner_out(self, rest, admin_user):
        for n in range(ADMIN_ACCOUNT):  # one failure each from many addresses
            assert self.sign_in(rest, f"192.0.2.{100 + n}", "root", "nope").status == 200
        assert self.sign_in(rest, "192.0.2.100", "root", "correct-horse-9").status == 429
        assert self.sign_in(rest, "192.0.2.200", "root", "correct-horse-9").status == 302


def test_mcp_server_cpu_per_call_at_the_largest_inputs(mcp, server_key, capsys):
    """The MCP server process's own CPU per call over HTTP (the client's is not counted)."""
    from tests.reliability.test_bounded_work import LARGEST_TASK, LONGEST_SEARCH, MOST_TAGS

    user = UserFactory()
    Task.objects.bulk_create(
        Task(user=user, title=f"Task {n}", description="notes " * 20, position=n)
        for n in range(1000)
    )
    token = f"Bearer {server_key.token_for(user)}"
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "list_tasks, search and tags at their largest": (
            "list_tasks",
            {"search": LONGEST_SEARCH, "tags": MOST_TAGS, "limit": 1000},
        ),
        "list_tasks, 1,000 tasks": ("list_tasks", {"limit": 1000}),
        "task_stats, search and tags at their largest": (
            "task_stats",
            {"search": LONGEST_SEARCH, "tags": MOST_TAGS},
        ),
        "create_task, every field at its largest": ("create_task", LARGEST_TASK),
        "list_tasks, a 20,000-word search (refused)": (
            "list_tasks",
            {"search": " ".join(f"w{n}" for n in range(20_000))},
        ),
    }
    for what, (tool, arguments) in cases.items():
        mcp_call(mcp, token, tool, "198.51.100.99", **arguments)  # warm-up
        runs = []
        for _ in range(3):
            before = mcp.cpu_seconds()
            reply = mcp_call(mcp, token, tool, "198.51.100.99", **arguments)
            runs.append((mcp.cpu_seconds() - before) * 1000)
            assert reply.status == 200
        with capsys.disabled():
            print(f"\n  MCP server CPU per call {sorted(runs)[1]:6.2f} ms  {what}", end="")
