"""pytest plugin: run the whole suite against a real, throwaway PostgreSQL server.

Loaded with `-p tests.postgres` (pyproject.toml) so that it runs before
pytest-django reads the settings. With TEST_DATABASE_URL set it uses that server;
otherwise it initdb's a cluster in a temporary folder, starts it on a free
loopback port, points DATABASE_URL at it, and removes it when the session ends.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest

MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them "
    "(`apt-get install -y postgresql`), set PG_BINDIR to their folder, or set "
    "TEST_DATABASE_URL to a server the tests may create databases on."
)


def _find_bindir() -> Path:
    candidates = [os.environ.get("PG_BINDIR", "")]
    candidates += sorted(
        (str(p.parent) for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        key=lambda path: int(Path(path).parent.name),
        reverse=True,
    )
    if shutil.which("pg_config"):
        candidates.append(
            subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        )
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise pytest.UsageError(MISSING)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, owned by a non-root user when run as root."""

    def __init__(self) -> None:
        self.bindir = _find_bindir()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tasks-api-pg-"))
        self.datadir = self.root / "data"
        self.user_prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            owner = "postgres" if _user_exists("postgres") else "nobody"
            entry = pwd.getpwnam(owner)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.user_prefix = ["runuser", "-u", owner, "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.user_prefix, *args], check=True, capture_output=True, text=True, timeout=120
        )

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
            "-A", "trust", "-E", "UTF8", "--no-locale",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def version(self) -> str:
        return subprocess.run(
            [str(self.bindir / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


_server: PostgresServer | None = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    global _server
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        _server = PostgresServer()
        _server.init()
        _server.start()
        url = _server.url
    os.environ["DATABASE_URL"] = url
    return (yield)


def pytest_report_header() -> str:
    if _server is None:
        return f"postgresql: TEST_DATABASE_URL={os.environ.get('TEST_DATABASE_URL')}"
    return f"postgresql: {_server.version()} on 127.0.0.1:{_server.port} (started for this run)"


def pytest_unconfigure() -> None:
    global _server
    if _server is not None:
        try:
            _server.stop()
        finally:
            shutil.rmtree(_server.root, ignore_errors=True)
            _server = None


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer | None:
    """The server this run started (None when TEST_DATABASE_URL was given)."""
    return _server
