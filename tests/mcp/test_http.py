"""The MCP tools over Streamable HTTP, through the SDK's client, against /mcp of the API's own
gunicorn (as scripts/serve runs it); the separate `manage.py mcp_http` answers the same."""

import datetime
from typing import Any

import anyio
import httpx2
import pytest
from django.urls import reverse
from mcp import MCPError

from tasks.models import Task
from tasks.serializers import TASK_FIELDS, TaskSerializer
from tests.factories import SessionFactory, TaskFactory
from tests.mcp.conftest import Session, http_client
from tests.tokens import app_token, signed_session_token

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = {
    "list_tasks", "get_task", "create_task", "update_task", "complete_task", "delete_task",
    "task_stats", "list_changes", "batch",
}  # fmt: skip


@pytest.fixture(params=["gunicorn", "mcp_http"])
def each_mcp_url(request) -> str:
    """/mcp of the API's gunicorn, then of the separate `manage.py mcp_http`."""
    return request.getfixturevalue("mcp_url" if request.param == "gunicorn" else "mcp_http_url")


def test_one_port_serves_rest_docs_admin_health_and_mcp(mcp_url, user):
    base = mcp_url.removesuffix("/mcp")
    token = app_token(user.id)
    assert httpx2.get(f"{base}/health").json() == {"status": "ok"}
    assert httpx2.get(f"{base}/docs").text.count("swagger-ui") > 0
    assert "Django administration" in httpx2.get(f"{base}/admin/login/").text
    me = httpx2.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["user"]["id"] == user.pk
    created = Session(lambda: http_client(mcp_url, token)).ok("create_task", title="one origin")
    listed = httpx2.get(f"{base}/api/tasks", headers={"Authorization": f"Bearer {token}"}).json()
    assert [task["id"] for task in listed["tasks"]] == [created["task"]["id"]]
    assert httpx2.post(f"{base}/mcp/", json={}).status_code == 404  # only /mcp itself


def test_mcp_requests_pass_the_apis_middleware(mcp_url, user):
    """Request id, the JSON 405 for anything but POST (a GET would hold a thread open on an
    event stream a stateless server never writes), 411 for a chunked body."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {app_token(user.id)}", "X-Request-ID": "mcp-call-1",
               "Accept": "application/json, text/event-stream"}  # fmt: skip
    response = httpx2.post(mcp_url, json=body, headers=headers)
    assert (response.status_code, response.headers["X-Request-ID"]) == (200, "mcp-call-1")
    assert {tool["name"] for tool in response.json()["result"]["tools"]} == TOOLS
    for method in ["GET", "PUT", "DELETE"]:
        refused = httpx2.request(method, mcp_url, headers=headers, timeout=5)
        assert (refused.status_code, refused.headers["Allow"]) == (405, "POST")
        assert refused.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    chunked = httpx2.post(mcp_url, content=iter([b'{"jsonrpc": "2.0"}']), headers=headers)
    assert chunked.status_code == 411


def test_the_separate_process_serves_every_tool(mcp_http_url, user):
    session = Session(lambda: http_client(mcp_http_url, app_token(user.id)))
    assert {tool.name for tool in session.list_tools()} == TOOLS
    task = session.ok("create_task", title="from mcp_http")["task"]
    assert session.ok("get_task", task_id=task["id"])["task"] == task


def test_lists_every_tool_with_input_and_output_schemas(mcp):
    tools = {tool.name: tool for tool in mcp.list_tools()}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema["type"] == "object"
        assert "ctx" not in tool.input_schema["properties"]
        assert "user" not in tool.input_schema["properties"]  # never from arguments
    assert tools["create_task"].input_schema["required"] == ["title"]
    assert tools["create_task"].input_schema["properties"]["priority"]["enum"] == [
        "low", "medium", "high"
    ]  # fmt: skip
    task_schema = tools["get_task"].output_schema["properties"]["task"]
    assert set(tools["get_task"].output_schema["$defs"]["TaskData"]["properties"]) == set(
        TASK_FIELDS
    ), task_schema
    assert tools["list_tasks"].annotations.read_only_hint is True
    assert tools["delete_task"].annotations.destructive_hint is True


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_both_protocol_generations(mcp_url, user, mode):
    session = Session(lambda: http_client(mcp_url, app_token(user.id), mode=mode))
    task = session.ok("create_task", title=f"via {mode}")["task"]
    assert session.ok("get_task", task_id=task["id"])["task"] == task


def test_every_tool_end_to_end(mcp, user):
    created = mcp.ok(
        "create_task", title="  Buy milk ", priority="high", category="shopping",
        due_date="2030-01-02", tags=["errands", "errands"],
    )["task"]  # fmt: skip
    assert created["title"] == "Buy milk"
    assert created["user_id"] == user.pk
    assert created["tags"] == ["errands"]
    task_id = created["id"]

    assert mcp.ok("get_task", task_id=task_id)["task"] == created

    updated = mcp.ok("update_task", task_id=task_id, description="oat", position=7)["task"]
    assert (updated["description"], updated["position"], updated["title"]) == ("oat", 7, "Buy milk")

    toggled = mcp.ok("complete_task", task_id=task_id)["task"]
    assert toggled["completed"] is True
    assert toggled["completed_at"] is not None
    assert mcp.ok("complete_task", task_id=task_id, completed=True)["task"]["completed"] is True
    reopened = mcp.ok("complete_task", task_id=task_id)["task"]
    assert (reopened["completed"], reopened["completed_at"]) == (False, None)

    listed = mcp.ok("list_tasks", priority="high", search="milk")
    assert [task["id"] for task in listed["tasks"]] == [task_id]
    assert (listed["total"], listed["pending_count"], listed["limit"]) == (1, 1, 1000)

    stats = mcp.ok("task_stats")
    assert (stats["total_tasks"], stats["by_priority"]["high"]) == (1, 1)

    assert mcp.ok("delete_task", task_id=task_id) == {"id": task_id, "deleted": True}
    assert not Task.objects.filter(pk=task_id).exists()
    assert mcp.error("get_task", task_id=task_id)["code"] == "NOT_FOUND"


def test_sync_tools_end_to_end(mcp, user, other_user):
    first = mcp.ok("list_changes")
    assert (first["tasks"], first["deleted"], first["has_more"]) == ([], [], False)
    results = mcp.ok(
        "batch",
        operations=[
            {"op": "create", "task": {"title": "one"}},
            {"op": "create", "task": {"title": "two", "priority": "high"}},
        ],
    )["results"]
    assert [(r["op"], r["status"], r["task"]["title"]) for r in results] == [
        ("create", 201, "one"), ("create", 201, "two")
    ]  # fmt: skip
    one, two = (r["task"] for r in results)
    TaskFactory(user=other_user)

    # The version precondition on update, complete and delete.
    stale = mcp.error("update_task", task_id=one["id"], title="x", if_match=one["version"] + 1)
    assert stale["code"] == "PRECONDITION_FAILED"
    assert stale["details"]["current"]["title"] == "one"
    updated = mcp.ok("update_task", task_id=one["id"], title="uno", if_match=one["version"])
    assert updated["task"]["version"] == one["version"] + 1
    assert mcp.error("complete_task", task_id=one["id"], if_match=1)["code"] == (
        "PRECONDITION_FAILED"
    )
    assert mcp.ok("complete_task", task_id=one["id"], if_match=2)["task"]["completed"] is True
    assert mcp.error("delete_task", task_id=two["id"], if_match=5)["code"] == "PRECONDITION_FAILED"
    assert mcp.ok("delete_task", task_id=two["id"], if_match=1)["deleted"] is True

    changes = mcp.ok("list_changes", since=first["cursor"])
    assert [t["title"] for t in changes["tasks"]] == ["uno"]
    assert changes["tasks"][0]["version"] == 3
    assert changes["deleted"] == [two["id"]]
    later = mcp.ok("list_changes", since=changes["cursor"])
    assert (later["tasks"], later["deleted"]) == ([], [])

    failed = mcp.error(
        "batch",
        operations=[
            {"op": "update", "id": one["id"], "task": {"title": "never"}},
            {"op": "delete", "id": one["id"], "if_match": 1},
        ],
    )
    assert failed["code"] == "PRECONDITION_FAILED"
    assert failed["details"]["operation"] == {"index": 1, "op": "delete", "id": one["id"]}
    assert Task.objects.get(pk=one["id"]).title == "uno"
    assert mcp.error("batch", operations=[{"op": "nope"}])["code"] == "VALIDATION_ERROR"
    assert mcp.error("list_changes", since="garbage")["code"] == "VALIDATION_ERROR"


def test_results_are_the_rest_representation(mcp, user):
    task = TaskFactory(user=user, tags=["a"], due_date=datetime.date(2031, 5, 6), completed=True)
    task.refresh_from_db()
    assert mcp.ok("get_task", task_id=str(task.pk))["task"] == TaskSerializer(task).data


@pytest.mark.parametrize(
    ("arguments", "query"),
    [
        ({}, {}),
        (
            {"status": "pending", "sort_by": "priority"},
            {"status": "pending", "sort_by": "priority"},
        ),
        ({"priority": "low", "order": "asc"}, {"priority": "low", "order": "asc"}),
        ({"tags": ["x", "y"]}, {"tags": "x,y"}),
        ({"completed": True, "sort_by": "due_date"}, {"completed": "true", "sort_by": "due_date"}),
        (
            {"overdue": False, "due_after": "2020-01-01"},
            {"overdue": "false", "due_after": "2020-01-01"},
        ),
        (
            {"search": "alpha", "limit": 2, "offset": 1},
            {"search": "alpha", "limit": 2, "offset": 1},
        ),
    ],
)
def test_list_matches_the_rest_list(mcp, user, auth_client, arguments, query):
    for index in range(6):
        TaskFactory(
            user=user, title=f"alpha {index}", completed=index % 3 == 0,
            tags=["x", "y"] if index % 2 else ["x"],
            due_date=datetime.date(2021 + index, 1, 1) if index % 2 else None,
        )  # fmt: skip
    rest = auth_client.get(reverse("task-list"), query).json()
    assert mcp.ok("list_tasks", **arguments) == rest


def test_stats_match_the_rest_stats(mcp, user, auth_client):
    TaskFactory.create_batch(3, user=user, priority="low")
    TaskFactory(user=user, completed=True, priority="high")
    rest = auth_client.get(reverse("task-stats"), {"priority": "low"}).json()
    assert mcp.ok("task_stats", priority="low") == rest


def test_update_keeps_omitted_fields_and_null_clears(mcp, user):
    task = TaskFactory(user=user, description="keep", due_date=datetime.date(2030, 1, 1))
    result = mcp.ok("update_task", task_id=str(task.pk), title="new")["task"]
    assert (result["description"], result["due_date"]) == ("keep", "2030-01-01")
    result = mcp.ok("update_task", task_id=str(task.pk), description=None, due_date=None)["task"]
    assert (result["title"], result["description"], result["due_date"]) == ("new", None, None)


def test_concurrent_toggles_are_never_lost(mcp_url, user):
    task = TaskFactory(user=user)
    token = app_token(user.id)

    async def toggle(results):
        async with http_client(mcp_url, token) as client:
            results.append(await client.call_tool("complete_task", {"task_id": str(task.pk)}))

    async def main():
        results: list[Any] = []
        async with anyio.create_task_group() as group:
            for _ in range(11):
                group.start_soon(toggle, results)
        return results

    results = anyio.run(main)
    assert [result.is_error for result in results] == [False] * 11
    task.refresh_from_db()
    assert task.completed is True


class TestUserIsolation:
    def test_another_users_task_is_not_found(self, mcp, other_user):
        theirs = TaskFactory(user=other_user, title="secret")
        task_id = str(theirs.pk)
        for name, arguments in [
            ("get_task", {}),
            ("update_task", {"title": "mine now"}),
            ("complete_task", {}),
            ("delete_task", {}),
        ]:
            error = mcp.error(name, task_id=task_id, **arguments)
            assert (error["code"], error["message"]) == ("NOT_FOUND", "Not found."), name
        theirs.refresh_from_db()
        assert (theirs.title, theirs.completed) == ("secret", False)

    def test_lists_and_stats_only_count_own_tasks(self, mcp, user, other_user):
        mine = TaskFactory(user=user)
        TaskFactory.create_batch(2, user=other_user)
        listed = mcp.ok("list_tasks")
        assert [task["id"] for task in listed["tasks"]] == [str(mine.pk)]
        assert listed["total"] == 1
        assert mcp.ok("task_stats")["total_tasks"] == 1

    def test_created_tasks_belong_to_the_tokens_user(self, mcp_url, user, other_user):
        session = Session(lambda: http_client(mcp_url, app_token(other_user.id)))
        created = session.ok("create_task", title="theirs")["task"]
        assert created["user_id"] == other_user.pk
        assert Task.objects.get(pk=created["id"]).user_id == other_user.pk


class TestAuthentication:
    def _post(self, url, headers):
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream", **headers}
        return httpx2.post(url, json=body, headers=headers)

    @pytest.mark.parametrize(
        ("headers", "message"),
        [
            ({}, "Authentication credentials were not provided."),
            ({"Authorization": "Bearer not-a-token"}, None),
            ({"Authorization": "Bearer a.b.c"}, None),
            (
                {"Authorization": "Basic dXNlcjpwYXNz"},
                "Authentication credentials were not provided.",
            ),
        ],
    )
    def test_requests_without_valid_credentials_get_401(self, each_mcp_url, headers, message):
        response = self._post(each_mcp_url, headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        body = response.json()
        assert body["error"]["code"] == "AUTH_REQUIRED"
        assert body["detail"] == body["error"]["message"]
        if message:
            assert body["error"]["message"] == message

    @pytest.mark.parametrize("kind", ["better-auth-jwt", "app-token", "session", "signed-session"])
    def test_accepts_every_rest_credential(self, mcp_url, user, signing_key, kind):
        session = SessionFactory(user=user)
        token = {
            "better-auth-jwt": signing_key.token_for(user),
            "app-token": app_token(user.id),
            "session": session.token,
            "signed-session": signed_session_token(session.token),
        }[kind]
        listed = Session(lambda: http_client(mcp_url, token)).ok("list_tasks")
        assert listed["total"] == 0

    def test_a_forwarded_request_without_a_trusted_proxy_is_refused_cleanly(self, mcp_url):
        """X-Forwarded-For with RATE_LIMIT_NUM_PROXIES=0 is noted (a query) off the event loop."""
        headers = {"Authorization": "Bearer not-a-token", "X-Forwarded-For": "198.51.100.1"}
        assert self._post(mcp_url, headers).status_code == 401

    def test_signed_out_session_is_refused(self, mcp_url, user):
        session = SessionFactory(user=user)
        token = session.token
        session.delete()
        response = self._post(mcp_url, {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "session not found"

    def test_expired_token_is_refused(self, mcp_url, user):
        response = self._post(
            mcp_url, {"Authorization": f"Bearer {app_token(user.id, lifetime=-3600)}"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "token expired"

    def test_token_of_a_deleted_user_is_refused(self, mcp_url, user):
        token = app_token(user.id)
        user.delete()
        assert self._post(mcp_url, {"Authorization": f"Bearer {token}"}).status_code == 401

    def test_sdk_client_with_an_invalid_token_fails(self, mcp_url):
        async def connect():
            async with http_client(mcp_url, "invalid") as client:
                await client.list_tools()

        with pytest.raises(ExceptionGroup) as caught:
            anyio.run(connect)
        assert caught.group_contains(MCPError)


class TestToolErrors:
    def test_missing_required_argument(self, mcp):
        error = mcp.error("create_task")
        assert error["code"] == "VALIDATION_ERROR"
        assert error["message"].startswith("title: ")
        assert set(error["details"]) == {"title"}

    def test_wrong_argument_type(self, mcp):
        error = mcp.error("create_task", title={"not": "a string"})
        assert (error["code"], list(error["details"])) == ("VALIDATION_ERROR", ["title"])

    @pytest.mark.parametrize(
        ("arguments", "field"),
        [
            ({"title": "   "}, "title"),
            ({"title": "x" * 201}, "title"),
            ({"title": "ok", "priority": "urgent"}, "priority"),
            ({"title": "ok", "due_date": "tomorrow"}, "due_date"),
            ({"title": "ok", "tags": ["x" * 51]}, "tags"),
            ({"title": "nul\x00"}, "title"),
        ],
    )
    def test_invalid_values_fail_as_rest_does(self, mcp, auth_client, arguments, field):
        rest = auth_client.post(reverse("task-list"), arguments, format="json").json()["error"]
        error = mcp.error("create_task", **arguments)
        assert error == rest
        assert field in error["details"]

    @pytest.mark.parametrize(
        ("arguments", "query"),
        [
            ({"sort_by": "secret"}, {"sort_by": "secret"}),
            ({"status": "done"}, {"status": "done"}),
            ({"due_before": "soon"}, {"due_before": "soon"}),
            ({"limit": 0}, {"limit": 0}),
        ],
    )
    def test_invalid_list_arguments_fail_as_rest_does(self, mcp, auth_client, arguments, query):
        rest = auth_client.get(reverse("task-list"), query).json()["error"]
        assert mcp.error("list_tasks", **arguments) == rest

    def test_malformed_id_is_not_found(self, mcp):
        assert mcp.error("get_task", task_id="not-a-uuid")["code"] == "NOT_FOUND"
        assert mcp.error("complete_task", task_id="not-a-uuid")["code"] == "NOT_FOUND"

    def test_unknown_tool_is_a_tool_error(self, mcp):
        assert mcp.error("drop_tables")["code"] == "VALIDATION_ERROR"

    def test_server_keeps_serving_after_errors(self, mcp):
        mcp.error("create_task", title=123)
        assert mcp.ok("create_task", title="still fine")["task"]["title"] == "still fine"
