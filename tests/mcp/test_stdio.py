"""`manage.py mcp` over stdio, through the SDK's stdio client (a subprocess per session)."""

import subprocess
import sys

import anyio
import pytest
from django.conf import settings
from django.db import connection

from tasks.models import Task
from tests.factories import TaskFactory
from tests.mcp.conftest import Session, server_env, stdio_client
from tests.mcp.test_http import TOOLS
from tests.tokens import app_token

pytestmark = pytest.mark.django_db(transaction=True)


def test_tools_over_stdio(user, other_user):
    theirs = TaskFactory(user=other_user)
    token = app_token(user.id)

    async def session(client):
        tools = (await client.list_tools()).tools
        created = await client.call_tool("create_task", {"title": "From the desktop"})
        listed = await client.call_tool("list_tasks", {})
        toggled = await client.call_tool(
            "complete_task", {"task_id": created.structured_content["task"]["id"]}
        )
        foreign = await client.call_tool("get_task", {"task_id": str(theirs.pk)})
        invalid = await client.call_tool("create_task", {"title": ""})
        return tools, created, listed, toggled, foreign, invalid

    results = Session(lambda: stdio_client(token)).run(session)
    tools, created, listed, toggled, foreign, invalid = results

    assert {tool.name for tool in tools} == TOOLS
    task = created.structured_content["task"]
    assert task["user_id"] == user.pk
    assert Task.objects.get(pk=task["id"]).title == "From the desktop"
    assert [t["id"] for t in listed.structured_content["tasks"]] == [task["id"]]
    assert toggled.structured_content["task"]["completed"] is True
    assert foreign.is_error
    assert foreign.structured_content["error"]["code"] == "NOT_FOUND"
    assert invalid.is_error
    assert invalid.structured_content["error"]["code"] == "VALIDATION_ERROR"


def test_every_call_verifies_the_token_again(user):
    """A token that stops being valid (here: its user is deleted) stops working mid-session."""
    token = app_token(user.id)

    def delete_user():
        user.delete()
        connection.close()

    async def session(client):
        before = await client.call_tool("list_tasks", {})
        await anyio.to_thread.run_sync(delete_user)
        after = await client.call_tool("list_tasks", {})
        return before, after

    before, after = Session(lambda: stdio_client(token)).run(session)
    assert not before.is_error
    assert after.is_error
    assert after.structured_content["error"]["code"] == "AUTH_REQUIRED"


@pytest.mark.parametrize(
    ("token", "message"),
    [("", "Give the user's token"), ("not-a-token", "Token refused: session not found")],
)
def test_the_command_refuses_a_missing_or_invalid_token(token, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "mcp"],
        cwd=settings.BASE_DIR,
        env=server_env(MCP_TOKEN=token),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stdout == ""  # stdout belongs to the protocol
