"""A real PgBouncer (Debian's package) in transaction mode, in front of the test PostgreSQL.

Started on a free loopback port with its files in a temporary folder; run as the
`postgres` user when the suite runs as root (PgBouncer refuses root). scripts/test
installs the package when it is missing; without it these fixtures fail, never skip.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

MISSING = (
    "pgbouncer was not found. Install it (`apt-get install -y pgbouncer`; scripts/test does) "
    "or set PGBOUNCER_BIN to its path."
)


def find_binary(name: str, env: str) -> str:
    path = os.environ.get(env) or shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        raise pytest.UsageError(MISSING if name == "pgbouncer" else f"{name} was not found")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_as() -> str | None:
    """The user to run a daemon as: `postgres` (or `nobody`) when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
        return "postgres"
    except KeyError:
        return "nobody"


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text() + (log.parent / "stderr").read_text()
            raise RuntimeError(f"exited with {process.returncode}:\n{output[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"not listening on {port} after {timeout} s:\n{log.read_text()[-3000:]}")


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Ask a daemon we started to stop; kill it if it has not within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PgBouncer:
    """PgBouncer in transaction mode; every database name goes to the server behind it."""

    def __init__(self, server_host: str, server_port: int, **settings: str | int) -> None:
        self.binary = find_binary("pgbouncer", "PGBOUNCER_BIN")
        self.server = (server_host, server_port)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tasks-api-pgbouncer-"))
        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": "",
            "auth_type": "trust",  # the test server trusts loopback too
            "auth_file": self.root / "userlist.txt",
            "admin_users": "postgres",
            "pool_mode": "transaction",
            "max_client_conn": 1000,
            "default_pool_size": 20,
            "server_login_retry": 1,  # docs/deployment.md: retry a restarted server quickly
            "logfile": self.root / "pgbouncer.log",
            "pidfile": self.root / "pgbouncer.pid",
            **settings,
        }
        self.process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return Path(str(self.settings["logfile"]))

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        host, port = self.server
        lines = ["[databases]", f"* = host={host} port={port}", "[pgbouncer]"]
        lines += [f"{name} = {value}" for name, value in self.settings.items()]
        (self.root / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        self.log.touch()
        user = run_as()
        if user:
            shutil.chown(self.root, user)
            for path in self.root.iterdir():
                shutil.chown(path, user)
        self.process = subprocess.Popen(
            [self.binary, str(self.root / "pgbouncer.ini")],
            user=user, stdout=subprocess.DEVNULL, stderr=(self.root / "stderr").open("wb"),
        )  # fmt: skip
        wait_for_port(self.port, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGINT)  # PgBouncer's "safe shutdown"
        self.process = None

    def admin(self, command: str) -> list[tuple]:
        """Run a command on PgBouncer's admin console (`SHOW POOLS`, `PAUSE db`, ...)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True) as conn:
            cursor = conn.execute(command)
            return cursor.fetchall() if cursor.description else []

    def version(self) -> str:
        return subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout


@contextmanager
def running_pgbouncer(host: str, port: int, **settings: str | int) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(host, port, **settings)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(bouncer.root, ignore_errors=True)


# The API tests that touch the database run twice: directly, and through PgBouncer.
POOLED_MODULES = (
    "tests/accounts/test_authentication.py",
    "tests/mcp/test_tools.py",
    "tests/reliability/test_idempotency.py",
    "tests/tasks/test_api.py",
    "tests/tasks/test_concurrency.py",
    "tests/tasks/test_filters.py",
    "tests/test_health.py",
)
DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    path = metafunc.definition.path.as_posix()
    uses_database = DATABASE_FIXTURES & set(metafunc.fixturenames) or any(
        mark.name == "django_db" for mark in metafunc.definition.iter_markers()
    )
    if uses_database and path.endswith(POOLED_MODULES):
        # Module scope: set up before pytest-django's per-test database fixtures, and
        # each module's tests are grouped by route (one switch per module and route).
        metafunc.parametrize(
            "database_route", ["direct", "pgbouncer"], indirect=True, scope="module"
        )


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the test database (stopped before it's dropped)."""
    from django.db import connection

    db = connection.settings_dict
    with running_pgbouncer(db["HOST"], int(db["PORT"])) as bouncer:
        yield bouncer


@pytest.fixture(scope="module", autouse=True)
def database_route(request: pytest.FixtureRequest) -> Iterator[str]:
    """`direct`, or `pgbouncer`: this module's tests then reach PostgreSQL through it.

    Autouse, so that it is in every test's closure: pytest sets up higher scopes first,
    so the route is chosen before pytest-django opens the test's transaction."""
    if getattr(request, "param", "direct") == "direct":
        yield "direct"
        return
    bouncer = request.getfixturevalue("pgbouncer")
    with through_pgbouncer(bouncer):
        yield "pgbouncer"


@contextmanager
def through_pgbouncer(bouncer: PgBouncer) -> Iterator[None]:
    """Every new connection of the default database (any thread) goes through `bouncer`."""
    from django.db import connection, connections

    settings_dict = connections.settings[connection.alias]
    saved = settings_dict["HOST"], settings_dict["PORT"]
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(bouncer.port)
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(bouncer.port))
    try:
        yield
    finally:
        connection.close()
        settings_dict["HOST"], settings_dict["PORT"] = saved
        connection.settings_dict.update(HOST=saved[0], PORT=saved[1])


@pytest.fixture(autouse=True)
def _no_request_deadline_left_over() -> Iterator[None]:
    """A test-client request that raised never sends request_finished (a WSGI server always
    does): its database deadline must not outlive it into the next test's queries."""
    from config.postgresql.base import _deadline

    token = _deadline.set(None)
    yield
    _deadline.reset(token)
