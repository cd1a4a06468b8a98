"""Django's PostgreSQL backend, safe behind transaction poolers (PgBouncer, Neon's pooled
endpoint), with a bound on how long a request waits for the database, and a health
check that costs no round trip.

Session settings. PgBouncer refuses libpq's `options` startup parameter, and in
transaction mode a plain `SET` would stay on a server connection that the pooler then
lends to other clients (Better Auth's among them). So the settings (statement_timeout,
idle_in_transaction_session_timeout, random_page_cost) travel as `SET LOCAL` in front
of the first statement of every transaction, in the same message: no extra round trip,
and the server forgets them when that transaction ends, whoever's it was.

The bound. A statement_timeout only starts once a query reaches a server; behind a
pooler a query can wait in its queue (PostgreSQL restarting: `query_wait_timeout`,
120 s by default), and a connect can hang on an unreachable host. Every wait on the
database socket of a request ends at the request's deadline (DATABASE_REQUEST_TIMEOUT_MS
after it started): the connection is closed and an OperationalError raised, which the
API answers with 503 SERVICE_UNAVAILABLE.

Health check. With CONN_HEALTH_CHECKS, Django checks a persistent connection at the
start of every request by running `SELECT 1`: a whole round trip, a third of a small
request's queries. Between requests a healthy connection is idle, with nothing to
read. A connection the server ended (restart, failover, idle timeout,
`pg_terminate_backend`) has its error message or end-of-file waiting on the socket, so
a zero-timeout poll tells the two apart without asking the server. A middlebox that
drops idle connections silently is kept away by TCP keepalives (settings.py), which
also make a dead peer's socket readable.

Direct connections. When nothing sits between this service and PostgreSQL (is_direct,
checked once per connection), the settings are SET once per connection instead, and the
statements every request runs are prepared (prepared_cursor). DATABASE_SESSION_SETTINGS
(`auto`, `transaction`, `session`) overrides the check.
"""

import ipaddress
import math
import re
import select
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db.backends.postgresql import base, operations
from psycopg import errors
from psycopg.pq import TransactionStatus

USABLE_STATES = (TransactionStatus.IDLE, TransactionStatus.INTRANS)

# Statements PostgreSQL refuses inside a transaction block: they get no SET LOCAL (they
# are run by migrations or by hand, never by a request).
NO_TRANSACTION_BLOCK = re.compile(
    r"\s*(?:VACUUM|CLUSTER|CHECKPOINT|ALTER\s+SYSTEM"
    r"|(?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE|SUBSCRIPTION)|REINDEX\s+(?:SYSTEM|DATABASE)"
    r"|(?:CREATE|DROP|REINDEX)\b[^;]*?\bCONCURRENTLY\b)",
    re.IGNORECASE,
)

# When the database calls of the current request must be done (time.monotonic()), or None.
_deadline: ContextVar[float | None] = ContextVar("database_deadline", default=None)


class DeadlineExceeded(errors.OperationalError):
    """The request's time for the database ran out (pooler queue, connect or query)."""


def _start_request_deadline(**kwargs: Any) -> None:
    timeout_ms = getattr(settings, "DATABASE_REQUEST_TIMEOUT_MS", 0)
    _deadline.set(time.monotonic() + timeout_ms / 1000 if timeout_ms else None)


def _end_request_deadline(**kwargs: Any) -> None:
    _deadline.set(None)


request_started.connect(_start_request_deadline, dispatch_uid="database_deadline_start")
request_finished.connect(_end_request_deadline, dispatch_uid="database_deadline_end")


@contextmanager
def request_deadline() -> Iterator[None]:
    """The request bound for a request Django's handlers do not see (an MCP tool call)."""
    timeout_ms = getattr(settings, "DATABASE_REQUEST_TIMEOUT_MS", 0)
    with database_deadline(timeout_ms / 1000) if timeout_ms else nullcontext():
        yield


@contextmanager
def database_deadline(seconds: float) -> Iterator[None]:
    """Database waits inside end within `seconds` (or the request's deadline, if sooner)."""
    current = _deadline.get()
    token = _deadline.set(min(time.monotonic() + seconds, current or math.inf))
    try:
        yield
    finally:
        _deadline.reset(token)


def _remaining() -> float | None:
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def _deadline_exceeded(what: str) -> DeadlineExceeded:
    return DeadlineExceeded(f"{what}: the request's time for the database ran out")


class BoundedConnection(psycopg.Connection):
    """psycopg's connection whose every wait ends at the request's deadline."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        remaining = _remaining()
        if remaining is None or (timeout is not None and timeout < remaining):
            return super().wait(gen, interval, timeout)
        if remaining <= 0:  # nothing was sent: the connection stays usable
            raise _deadline_exceeded("no time left for a query")
        try:
            return super().wait(gen, interval, remaining)
        except errors._WaitTimeout:
            # Part of the exchange may be in flight: the connection is never reused. The
            # pooler forgets a queued query; statement_timeout ends a running one.
            self.close()
            raise _deadline_exceeded("query not answered in time") from None


# Only a transaction block can sit idle in a transaction: a statement run in autocommit
# leaves this setting out of its prefix (one statement less to run).
TRANSACTION_ONLY_SETTINGS = frozenset({"idle_in_transaction_session_timeout"})


class Prefix(NamedTuple):
    sql: str
    statements: int

    @classmethod
    def of(cls, session_settings: Mapping[str, Any]) -> "Prefix":
        sets = [f"SET LOCAL {name} = '{value}';" for name, value in session_settings.items()]
        return cls("".join(sets), len(sets))


if TYPE_CHECKING:  # django-stubs leave out the cursors' psycopg base classes
    _Cursor = psycopg.ClientCursor
    _ServerBindingCursor = psycopg.Cursor
else:
    _Cursor = base.Cursor
    _ServerBindingCursor = base.ServerBindingCursor


@cache
def _settings_cursor(in_autocommit: Prefix, in_transaction: Prefix) -> type:
    """A cursor class that sends SET LOCALs ahead of each transaction's first statement."""

    class SessionSettingsCursor(_Cursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            prefix = self._prefix(query)
            if prefix is None:
                return super().execute(query, params, **kwargs)
            if not isinstance(query, str | bytes):
                query = query.as_string(self)
            sql = prefix.sql if isinstance(query, str) else prefix.sql.encode()
            super().execute(sql + query, params, **kwargs)
            for _ in range(prefix.statements):
                self.nextset()  # the caller sees its own statement's result
            return self

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            if self._prefix(query) is None:
                return super().executemany(query, params_seq, **kwargs)
            if not self.connection.autocommit:  # psycopg begins the transaction first
                super().execute(in_transaction.sql)
                return super().executemany(query, params_seq, **kwargs)
            with self.connection.transaction():
                super().execute(in_transaction.sql)
                return super().executemany(query, params_seq, **kwargs)

        def _prefix(self, query: Any) -> Prefix | None:
            if self.connection.pgconn.transaction_status != TransactionStatus.IDLE:
                return None  # inside a transaction: its first statement carried them
            if NO_TRANSACTION_BLOCK.match(query if isinstance(query, str) else str(query)):
                return None
            return in_autocommit if self.connection.autocommit else in_transaction

    return SessionSettingsCursor


# psycopg's default: a statement run this often on one connection is one that requests
# repeat; a one-off never costs a PREPARE.
PREPARE_THRESHOLD = 5


def is_direct(connection: psycopg.Connection) -> bool:
    """Whether the server sees this connection at the address and port libpq dialed.

    Then no pooler or proxy sits in between, and session state (SET, prepared
    statements) stays with this client. Through PgBouncer, HAProxy, a cloud proxy or a
    NAT the server sees another address or port: the answer is then False, the safe
    side (the statements work either way).
    """
    info = connection.info
    with psycopg.ClientCursor(connection) as cursor:
        cursor.execute(
            "SELECT host(inet_server_addr()), inet_server_port(), current_setting('port'), "
            "current_setting('unix_socket_directories')"
        )
        address, server_port, port, socket_dirs = cursor.fetchone() or (None,) * 4
    if info.hostaddr:  # TCP
        return (
            address is not None
            and server_port == info.port
            and (ipaddress.ip_address(address) == ipaddress.ip_address(info.hostaddr))
        )
    directories = [directory.strip() for directory in (socket_dirs or "").split(",")]
    return address is None and port == str(info.port) and info.host in directories


class PreparedCursor(_ServerBindingCursor):
    """Django's server-binding cursor, for prepared_cursor."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        try:
            return super().execute(query, params, **kwargs)
        except errors.FeatureNotSupported as error:
            # "cached plan must not change result type": a migration changed a column's
            # type under a prepared statement, which then fails on every run. The
            # connection is replaced at the end of the request (is_usable, _close), and
            # the request is a 503 (config.errors.is_schema_error).
            self.connection.stale_plans = True  # type: ignore[attr-defined]
            error.stale_plan = True  # type: ignore[attr-defined]
            raise


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str:
        # Django asks the connection's binding; a prepared_cursor binds server-side on a
        # client-side connection, and its statement has $1... in place of the values.
        if isinstance(cursor, psycopg.ClientCursor) or not params:
            return super().last_executed_query(cursor, sql, params)
        return self.compose_sql(sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        session_settings = params.pop("session_settings", None) or {}
        self._scope = params.pop("session_settings_scope", "auto")
        self._session_sql = Prefix.of(session_settings).sql.replace(" LOCAL", "")
        self._direct_cursor = params["cursor_factory"]
        if self._scope == "session" or not session_settings:
            return params
        if params["cursor_factory"] is not base.Cursor:
            raise ImproperlyConfigured(
                "OPTIONS['session_settings'] needs client-side binding "
                "(server_side_binding is not supported with it)."
            )
        # Django's default client-side binding sends a statement as a simple query,
        # which may carry several statements: the SET LOCALs ride along with it.
        autocommit = {
            k: v for k, v in session_settings.items() if k not in TRANSACTION_ONLY_SETTINGS
        }
        params["cursor_factory"] = _settings_cursor(
            Prefix.of(autocommit), Prefix.of(session_settings)
        )
        return params

    def _configure_connection(self, connection: psycopg.Connection) -> bool:
        # django-stubs lack Django 5.2's DatabaseWrapper._configure_connection.
        commit = super()._configure_connection(connection)  # type: ignore[misc]
        direct = self._scope == "session" or (self._scope == "auto" and is_direct(connection))
        connection.direct = direct  # type: ignore[attr-defined]  # read by prepared_cursor
        if not direct:
            return commit or self._scope == "auto"  # is_direct's query may have begun one
        # Session state is safe here: SET once, no prefix, and prepared statements
        # (Django turns psycopg's off; only a prepared_cursor's statements use them).
        connection.cursor_factory = self._direct_cursor
        connection.prepare_threshold = PREPARE_THRESHOLD
        if self._session_sql:
            with psycopg.ClientCursor(connection) as cursor:
                cursor.execute(self._session_sql)
            return True
        return commit or self._scope == "auto"

    def prepared_cursor(self) -> Any:
        """A cursor for the statements every request runs, with their values as parameters.

        On a direct connection it binds them server-side, so psycopg prepares each after
        its first runs (`prepare_threshold`) and PostgreSQL parses and plans it once per
        connection instead of every time. Behind a transaction pooler (PgBouncer before
        1.21) a prepared statement would be missing on the next server connection: there
        it is the usual cursor. Not for statements whose best plan depends on a value,
        such as a search pattern or how many of a user's tasks a filter matches: a
        prepared statement may settle on a generic plan.
        """
        self.close_if_health_check_failed()
        self.ensure_connection()
        connection = self.connection
        if not getattr(connection, "direct", False):
            return self.cursor()
        # Django's own cursor set-up (time zone loaders, wrappers), with server binding:
        # the connection is this thread's, so the swap is seen by no other cursor.
        connection.cursor_factory = PreparedCursor
        try:
            return self.cursor()
        finally:
            connection.cursor_factory = self._direct_cursor

    def _close(self) -> None:
        connection = self.connection
        if self.pool and connection is not None and getattr(connection, "stale_plans", False):
            # The pool would lend it again: closed, it counts as broken and is replaced.
            connection.close()
        super()._close()  # type: ignore[misc]

    def get_new_connection(self, conn_params: dict[str, Any]) -> psycopg.Connection:
        remaining = _remaining()
        if remaining is not None and not self.pool:
            if remaining <= 0:
                raise _deadline_exceeded("no time left to connect")
            # libpq counts whole seconds and never less than 2: a connect that starts
            # with under 2 s left can overrun the deadline by the difference.
            timeout = min(int(conn_params.get("connect_timeout") or 2**31), int(remaining))
            conn_params = {**conn_params, "connect_timeout": max(timeout, 2)}
        connection = super().get_new_connection(conn_params)
        # psycopg.connect() makes its own class: the subclass only adds `wait`.
        connection.__class__ = BoundedConnection
        return connection

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        if connection.info.transaction_status not in USABLE_STATES:
            return False  # an aborted transaction, or a connection in an unknown state
        if getattr(connection, "stale_plans", False):
            return False  # see PreparedCursor
        poller = select.poll()  # not select(): it fails for descriptors over 1023
        try:
            poller.register(connection.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):  # the socket is gone
            return False


def failure_cause(error: BaseException) -> str:
    """What a database error says, for logs: SQLSTATE and the driver's first message line.

    libpq's messages name hosts, ports, users and databases, never passwords; a URL's
    user information is masked all the same in case a driver ever echoes one.
    """
    cause = error.__cause__ if isinstance(error.__cause__, psycopg.Error) else error
    first_line = (str(cause).strip().splitlines() or [""])[0]
    first_line = re.sub(r"(://)[^@/\s]*@", r"\1***@", first_line)
    first_line = re.sub(r"(password\s*=\s*)\S+", r"\1***", first_line, flags=re.IGNORECASE)
    sqlstate = getattr(cause, "sqlstate", None)
    return (
        f"{cause.__class__.__name__}"
        + (f" [{sqlstate}]" if sqlstate else "")
        + (f": {first_line[:300]}" if first_line else "")
    )
