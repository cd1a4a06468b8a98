"""The tools in-process (`mcp.Client(server)`): failures a real server cannot be pushed into."""

import anyio
import pytest
from django.db import OperationalError
from mcp import Client

from mcp_server.auth import stdio_token
from mcp_server.server import server
from tasks import selectors
from tests.factories import TaskFactory
from tests.tokens import app_token

pytestmark = pytest.mark.django_db(transaction=True)


def call(name, **arguments):
    async def main():
        async with Client(server) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(main)


@pytest.fixture
def as_user(user):
    """The in-process server acts like the stdio command for `user`."""
    reset = stdio_token.set(app_token(user.id))
    yield user
    stdio_token.reset(reset)


def test_without_credentials_every_call_is_refused():
    result = call("list_tasks")
    assert result.is_error
    assert result.structured_content["error"]["code"] == "AUTH_REQUIRED"


def test_a_crash_is_an_internal_error_that_reveals_nothing(as_user, monkeypatch, caplog):
    def crash(**kwargs):
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(selectors, "task_get", crash)
    result = call("get_task", task_id=str(TaskFactory(user=as_user).pk))
    assert result.is_error
    assert result.structured_content["error"] == {
        "code": "INTERNAL_ERROR", "message": "Internal server error.", "details": None
    }  # fmt: skip
    assert "hunter2" not in result.content[0].text
    assert "hunter2" in caplog.text  # logged for the operator


def test_a_database_outage_is_service_unavailable(as_user, monkeypatch):
    def outage(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "task_list", outage)
    result = call("list_tasks")
    assert result.structured_content["error"]["code"] == "SERVICE_UNAVAILABLE"
