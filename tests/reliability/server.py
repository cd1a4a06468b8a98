"""The service as it runs in production: gunicorn (config/gunicorn.py), DEBUG off, real
HTTP on loopback, on the test database. For tests that must see what a client sees."""

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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
        headers: dict[str, str | bytes] | None = None,
        body: bytes | str | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.monotonic()
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
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


@contextmanager
def running_server(log_dir: Path, start_timeout: float = 30.0, **env: str) -> Iterator[Server]:
    """Start gunicorn with production settings; `env` overrides (e.g. WEB_CONCURRENCY)."""
    port = free_port()
    secret = secrets.token_urlsafe(32)
    server_env = {
        **os.environ,
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
    log = log_dir / f"gunicorn-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py",
             "config.wsgi:application"],
            cwd=ROOT, env=server_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(port, process, log, secret, server_env)
    try:
        _wait_until_serving(server, start_timeout)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log_tail()}")
        try:
            if server.request("GET", "/api/me", timeout=2).status == 401:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start in {timeout} s:\n{server.log_tail()}")
