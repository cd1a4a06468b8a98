"""Real MCP servers for the tests, on the test database: the API's own gunicorn (config.wsgi,
as scripts/serve runs it: /mcp beside REST on one port) and `manage.py mcp_http`.

The server only sees committed rows, so tests that talk to it use `transactional_db`.
Clients are the SDK's own (`mcp.Client` over Streamable HTTP or stdio).
"""

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from django.conf import settings
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult

from tests.pgbouncer import stop_process
from tests.tokens import app_token

STARTUP_TIMEOUT = 60


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server process using this run's test database."""
    db = settings.DATABASES["default"]
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    url = f"postgresql://{quote(db['USER'])}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "BETTER_AUTH_SECRET": settings.BETTER_AUTH_SECRET,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # As in-process (tests/conftest.py): the suite fails far more often than a client.
        "RATE_LIMIT_AUTH_FAILURES": "",
        "RATE_LIMIT_WRITES": "",
        **extra,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_answering(port: int, process: subprocess.Popen, log: Path) -> None:
    """Until a worker answers HTTP (gunicorn listens before its workers have booted)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/health")
            connection.getresponse().read()  # any status: mcp_http serves only /mcp
            return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    pytest.fail(f"the server did not answer within {STARTUP_TIMEOUT}s:\n{log.read_text()}")


@contextmanager
def serving(command: list[str], port: int, log: Path, **env: str) -> Iterator[str]:
    """Run a server process on the test database; its /mcp URL while it runs."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=server_env(**env), stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_until_answering(port, process, log)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process, timeout=20)


@pytest.fixture(scope="session")
def mcp_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    """/mcp of the API's gunicorn (config/gunicorn.py, two workers) on this run's test database."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    command = [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py",
               "config.wsgi:application"]  # fmt: skip
    with serving(command, port, log, PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY="2") as url:
        yield url


@pytest.fixture(scope="session")
def mcp_http_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    """/mcp of `manage.py mcp_http` (uvicorn), the separate process some deployments keep."""
    port = _free_port()
    log = tmp_path_factory.mktemp("mcp_http") / "server.log"
    command = [sys.executable, "manage.py", "mcp_http", "--port", str(port)]
    with serving(command, port, log) as url:
        yield url


def http_client(url: str, token: str | None, mode: str = "auto") -> Client:
    """`mode="auto"` negotiates the newest protocol; "legacy" does the initialize handshake."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode=mode)


def stdio_client(token: str, **env: str) -> Client:
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp"],
        cwd=str(settings.BASE_DIR),
        env=server_env(MCP_TOKEN=token, **env),
    )
    return Client(parameters)


class Session:
    """A synchronous face on an MCP client, one connection per call (the server is stateless)."""

    def __init__(self, connect: Any) -> None:
        self.connect = connect

    def run(self, action: Any) -> Any:
        async def main() -> Any:
            async with self.connect() as client:
                return await action(client)

        return anyio.run(main)

    def list_tools(self) -> list[Any]:
        return self.run(lambda client: client.list_tools()).tools

    def call(self, name: str, **arguments: Any) -> CallToolResult:
        return self.run(lambda client: client.call_tool(name, arguments))

    def ok(self, name: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must succeed; its structured result."""
        result = self.call(name, **arguments)
        assert not result.is_error, result.content
        return result.structured_content

    def error(self, name: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must fail; its `{"code", "message", "details"}`."""
        result = self.call(name, **arguments)
        assert result.is_error, result.structured_content
        error = result.structured_content["error"]
        assert set(error) == {"code", "message", "details"}
        return error


@pytest.fixture
def mcp(mcp_url, user) -> Session:
    """An MCP session over Streamable HTTP, as `user`."""
    token = app_token(user.id)
    return Session(lambda: http_client(mcp_url, token))
