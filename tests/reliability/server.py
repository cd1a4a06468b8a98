"""The service as it runs in production: gunicorn (config/gunicorn.py), DEBUG off, real
HTTP on loopback, on the test database. For tests that must see what a client sees."""

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BETTER_AUTH_URL = "http://localhost:3000"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Server:
    """A running gunicorn; `request()` speaks raw HTTP/1.1 so tests control every byte."""

    port: int
    process: subprocess.Popen
    log: Path
    better_auth_secret: str
    env: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str | bytes] | None = None,
        body: bytes | str | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.monotonic()
        try:
            skip_host = any(name.lower() == "host" for name in headers or {})
            conn.putrequest(method, path, skip_accept_encoding=True, skip_host=skip_host)
            payload = body.encode() if isinstance(body, str) else body
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if payload is not None and "Transfer-Encoding" not in (headers or {}):
                conn.putheader("Content-Length", str(len(payload)))
            conn.endheaders(payload)
            response = conn.getresponse()
            data = response.read()
            return Reply(response.status, response.headers, data, time.monotonic() - started)
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def wait_for_workers(self, count: int, timeout: float = 10.0) -> list[int]:
        """The worker pids once `count` are running: the master forks them one by one."""
        deadline = time.monotonic() + timeout
        while len(pids := self.worker_pids()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return pids

    def cpu_seconds(self) -> float:
        """CPU time the server's processes (and all their threads) have used so far, to the
        nanosecond (/proc/<pid>/task/<tid>/schedstat; Linux): a request's server cost is
        the difference across it, whatever the client spends."""
        total = 0
        for pid in [self.process.pid, *self.worker_pids()]:
            for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
                with contextlib.suppress(OSError, ValueError, IndexError):  # a thread ended
                    total += int(stat.read_text().split()[0])
        return total / 1e9

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The database pytest-django created (`test_...`), for another process to use."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


_static_root: Path | None = None


def collected_static() -> Path:
    """collectstatic's output for production servers, made once per test run: the admin
    and the docs pages name their files through its manifest."""
    global _static_root
    if _static_root is None:
        root = Path(tempfile.mkdtemp(prefix="static-"))
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
            cwd=ROOT, check=True,
            env={**os.environ, "DJANGO_DEBUG": "false", "DJANGO_STATIC_ROOT": str(root),
                 "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
                 "BETTER_AUTH_SECRET": secrets.token_urlsafe(32)},
        )  # fmt: skip
        _static_root = root
    return _static_root


@contextmanager
def running_server(log_dir: Path, start_timeout: float = 30.0, **env: str) -> Iterator[Server]:
    """Start gunicorn with production settings; `env` overrides (e.g. WEB_CONCURRENCY)."""
    port = free_port()
    secret = secrets.token_urlsafe(32)
    server_env = {
        **os.environ,
        "DJANGO_STATIC_ROOT": str(collected_static()),
        "DATABASE_URL": test_database_url(),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "BETTER_AUTH_SECRET": secret,
        "BETTER_AUTH_URL": BETTER_AUTH_URL,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "DATABASE_CONNECT_TIMEOUT": "2",
        "RATE_LIMIT_WRITES": "",
        "RATE_LIMIT_AUTH_FAILURES": "",
        "LOG_LEVEL": "warning",
        **env,
    }
    command = [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py",
               "config.wsgi:application"]  # fmt: skip
    with _serving(
        command, log_dir / f"gunicorn-{port}.log", port, secret, server_env,
        start_timeout=start_timeout,
    ) as server:  # fmt: skip
        yield server


@contextmanager
def running_mcp_server(log_dir: Path, like: Server, **env: str) -> Iterator[Server]:
    """The MCP endpoint with `like`'s environment (same database, secret, limits)."""
    port = free_port()
    server_env = {**like.env, **env}
    command = [sys.executable, "manage.py", "mcp_http", "--port", str(port)]
    log = log_dir / f"mcp-{port}.log"
    with _serving(command, log, port, like.better_auth_secret, server_env, "/mcp") as server:
        yield server


@contextmanager
def _serving(
    command: list[str], log: Path, port: int, secret: str, env: dict[str, str],
    probe: str = "/api/me", start_timeout: float = 30.0,
) -> Iterator[Server]:  # fmt: skip
    """Run `command` until the block ends, once it answers `probe` with a 401."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(port, process, log, secret, env)
    try:
        _wait_until_serving(server, start_timeout, probe=probe)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(server: Server, timeout: float = 30.0, probe: str = "/api/me") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.log_tail()}")
        try:
            if server.request("POST" if probe == "/mcp" else "GET", probe, timeout=2).status == 401:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start in {timeout} s:\n{server.log_tail()}")
