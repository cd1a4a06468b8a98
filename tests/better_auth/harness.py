"""Real Better Auth servers (server.mjs, versions pinned in package-lock.json) beside this
service's gunicorn, each pair on a fresh database of the test PostgreSQL server.

A Variant is one Better Auth deployment: a version and the options its app passes to
betterAuth() and jwt(). `Stack` starts it the way a deploy does: Better Auth migrates
its own tables, then `manage.py migrate`, then the API serves.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.pgbouncer import stop_process
from tests.reliability.server import ROOT, Server, running_server

HARNESS = Path(__file__).resolve().parent
BASE_URL = "http://localhost:3000"  # the app's origin: its JWTs' iss and aud
# Generous: on a busy 2-core machine a start takes seconds of CPU but can wait much longer.
START_TIMEOUT = 180.0

SNAKE_CASE = {
    "user": {
        "modelName": "users",
        "fields": {
            "emailVerified": "email_verified",
            "createdAt": "created_at",
            "updatedAt": "updated_at",
        },
    },
    "session": {
        "modelName": "sessions",
        "fields": {
            "expiresAt": "expires_at",
            "createdAt": "created_at",
            "updatedAt": "updated_at",
            "ipAddress": "ip_address",
            "userAgent": "user_agent",
            "userId": "user_id",
        },
    },
    "account": {
        "modelName": "accounts",
        "fields": {
            "accountId": "account_id",
            "providerId": "provider_id",
            "userId": "user_id",
            "accessToken": "access_token",
            "refreshToken": "refresh_token",
            "idToken": "id_token",
            "accessTokenExpiresAt": "access_token_expires_at",
            "refreshTokenExpiresAt": "refresh_token_expires_at",
            "createdAt": "created_at",
            "updatedAt": "updated_at",
        },
    },
    "verification": {
        "modelName": "verifications",
        "fields": {"expiresAt": "expires_at", "createdAt": "created_at", "updatedAt": "updated_at"},
    },
}
SNAKE_CASE_JWKS = {
    "modelName": "jwks_keys",
    "fields": {
        "publicKey": "public_key",
        "privateKey": "private_key",
        "createdAt": "created_at",
        "expiresAt": "expires_at",
    },
}


@dataclass(frozen=True)
class Variant:
    """One Better Auth deployment: `version` (an npm alias in package.json) and its options."""

    name: str
    version: str
    jwt: dict[str, Any] | None = field(default_factory=dict)  # jwt() options; None: no plugin
    options: dict[str, Any] = field(default_factory=dict)  # more betterAuth() options
    algorithm: str = "EdDSA"  # what its JWTs are signed with
    id_type: str = "text"  # what "user".id becomes

    @property
    def package(self) -> str:
        return f"better-auth-{self.version}"

    @property
    def schema_setting(self) -> dict[str, Any]:
        """BETTER_AUTH_SCHEMA: the same renames the app gives betterAuth() and jwt()."""
        renames = {model: self.options[model] for model in SNAKE_CASE if model in self.options}
        if self.jwt and "schema" in self.jwt:
            renames["jwks"] = self.jwt["schema"]["jwks"]
        return renames


UUID_IDS = {"advanced": {"database": {"generateId": "uuid"}}}
VARIANTS = [
    Variant("1.3.34", "1.3.34"),
    # The Next.js frontend's configuration: better-auth 1.4.9, jwt with 7-day tokens.
    Variant("1.4.9", "1.4.9", jwt={"jwt": {"expirationTime": "7d"}}),
    Variant("1.7.25", "1.7.25"),
    Variant(
        "1.4.9-ES256", "1.4.9", {"jwks": {"keyPairConfig": {"alg": "ES256"}}}, algorithm="ES256"
    ),
    Variant(
        "1.4.9-RS256", "1.4.9", {"jwks": {"keyPairConfig": {"alg": "RS256"}}}, algorithm="RS256"
    ),
    Variant(
        "1.7.25-PS256", "1.7.25", {"jwks": {"keyPairConfig": {"alg": "PS256"}}}, algorithm="PS256"
    ),
    Variant("1.4.9-uuid-ids", "1.4.9", options=UUID_IDS, id_type="uuid"),
    Variant("1.7.25-uuid-ids", "1.7.25", options=UUID_IDS, id_type="uuid"),
    # 1.3 has no generateId "uuid": apps passed a generator, and the column stays text.
    Variant(
        "1.3.34-uuid-ids",
        "1.3.34",
        options={"advanced": {"database": {"generateId": {"function": "uuid"}}}},
    ),
    Variant(
        "1.4.9-serial-ids",
        "1.4.9",
        options={"advanced": {"database": {"generateId": "serial"}}},
        id_type="integer",
    ),
    Variant(
        "1.4.9-snake-case",
        "1.4.9",
        jwt={"schema": {"jwks": SNAKE_CASE_JWKS}},
        options=SNAKE_CASE,
    ),
    Variant("1.4.9-no-jwt", "1.4.9", jwt=None),
]


def require_node() -> str:
    """node, and the harness's packages as package-lock.json pins them (scripts/test runs
    `npm ci`); a clear failure, never a skip, when either is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is required for the real Better Auth servers: install it "
            "(`apt-get install -y nodejs npm`) and run scripts/test.",
            pytrace=False,
        )
    installed = HARNESS / "node_modules" / ".package-lock.json"
    if not installed.exists():
        pytest.fail(
            f"The Better Auth harness is not installed: run `npm ci --prefix {HARNESS}` "
            "(scripts/test does).",
            pytrace=False,
        )
    return node


def _server_url(dbname: str) -> str:
    """DATABASE_URL (the suite's PostgreSQL server) with another database name."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """An empty database on the suite's server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    maintenance = os.environ["DATABASE_URL"]
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _server_url(name)
    finally:
        with psycopg.connect(maintenance, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass
class BetterAuth:
    """A running Better Auth server; `call` speaks its HTTP API as a browser app does."""

    port: int
    version: str
    process: subprocess.Popen

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/auth{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Origin": BASE_URL, **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw, reply_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, reply_headers = error.code, error.read(), error.headers
        lowered = {name.lower(): value for name, value in reply_headers.items()}
        lowered["set-cookie"] = "\n".join(reply_headers.get_all("Set-Cookie") or [])
        return status, lowered, json.loads(raw) if raw.strip() else None


@contextmanager
def better_auth_server(
    variant: Variant, database_url: str, secret: str, log: Path
) -> Iterator[BetterAuth]:
    config = {
        "package": variant.package,
        "databaseUrl": database_url,
        "secret": secret,
        "baseURL": BASE_URL,
        "jwt": variant.jwt,
        "options": variant.options,
    }
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [require_node(), str(HARNESS / "server.mjs"), json.dumps(config)],
            cwd=HARNESS, stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
    try:
        line = _first_line(process, START_TIMEOUT)
        if not line:
            process.wait(timeout=10)
            raise RuntimeError(f"Better Auth {variant.name} did not start:\n{log.read_text()}")
        started = json.loads(line)
        yield BetterAuth(started["port"], started["version"], process)
    finally:
        stop_process(process, timeout=10)


def _first_line(process: subprocess.Popen, timeout: float) -> bytes:
    """The process's first stdout line, or b"" if it exits or `timeout` passes first."""
    import selectors

    assert process.stdout is not None  # started with stdout=PIPE
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return b""
    return process.stdout.readline()


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@dataclass
class Stack:
    """One variant running: its Better Auth server, this API on the same database."""

    variant: Variant
    auth: BetterAuth
    api: Server
    database_url: str
    migrate_output: str

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)


@contextmanager
def running_stack(variant: Variant, log_dir: Path) -> Iterator[Stack]:
    """Better Auth migrates and serves, then `manage.py migrate`, then gunicorn serves."""
    secret = secrets.token_urlsafe(32)
    with ExitStack() as stack:
        prefix = "ba_" + variant.name.replace(".", "_").replace("-", "_").lower()
        database_url = stack.enter_context(fresh_database(prefix))
        log = log_dir / f"better-auth-{variant.name}.log"
        auth = stack.enter_context(better_auth_server(variant, database_url, secret, log))
        env = {
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": secret,
            "BETTER_AUTH_URL": BASE_URL,
            "BETTER_AUTH_SCHEMA": json.dumps(variant.schema_setting),
        }
        migrated = manage("migrate", "--noinput", env=env)
        output = migrated.stdout + migrated.stderr
        if migrated.returncode != 0:
            raise RuntimeError(f"manage.py migrate failed for {variant.name}:\n{output}")
        api = stack.enter_context(
            running_server(log_dir, start_timeout=START_TIMEOUT, WEB_CONCURRENCY="1", **env)
        )
        yield Stack(variant, auth, api, database_url, output)


class Stacks:
    """Every selected variant's stack, started concurrently (most of a start is waiting
    for Node, migrations and gunicorn to come up) and stopped together at the end."""

    def __init__(self, variants: list[Variant], log_dir: Path, workers: int = 3) -> None:
        self._running: list[ExitStack] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(variants))))
        self._futures = {
            variant.name: self._pool.submit(self._start, variant, log_dir) for variant in variants
        }

    def _start(self, variant: Variant, log_dir: Path) -> Stack:
        exits = ExitStack()
        with self._lock:
            self._running.append(exits)
        return exits.enter_context(running_stack(variant, log_dir))

    def get(self, variant: Variant) -> Stack:
        return self._futures[variant.name].result()

    def close(self) -> None:
        """Stop every stack, concurrently (gunicorn's graceful stop is mostly waiting)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with ThreadPoolExecutor(max_workers=len(self._running) or 1) as stopping:
            list(stopping.map(ExitStack.close, self._running))
