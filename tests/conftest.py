import os
import shutil
import subprocess
from collections.abc import Generator

import pytest
from django.db import connection
from pytest_django.fixtures import validate_django_db
from rest_framework.test import APIClient

from accounts.jwts import clear_key_cache
from tasks import queries
from tests.factories import UserFactory
from tests.tokens import SigningKey, bearer_for, create_signing_key

# CI proves what it claims: there, a test that cannot run (a missing browser, server or
# tool) fails instead of skipping. Deselected tests (`-m "not slow"`) are not skips.
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _version(*command: str) -> str:
    if shutil.which(command[0]) is None:
        return "not found"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unusable ({error})"
    return result.stdout.strip() or result.stderr.strip() or f"exit {result.returncode}"


def pytest_report_header() -> list[str]:
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "chromium"
    lines = [f"chromium: {_version(chromium, '--version')}"]
    lines.append(f"node: {_version('node', '--version')}")
    if CI:
        lines.append("CI=true: a skipped test is a failure")
    return lines


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"Skipped under CI=true, which must run every test: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_skip(report)
    return report


pytest_plugins = ["tests.pgbouncer"]  # PgBouncer fixtures; the API tests run through it too


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    """Cached Better Auth keys never leak from one test into the next."""
    clear_key_cache()
    yield
    clear_key_cache()


@pytest.fixture(autouse=True)
def _check_cached_sql(monkeypatch: pytest.MonkeyPatch):
    """Every reuse of a list's compiled SQL is checked against a fresh compile: a filter
    whose SQL depends on more than its parameters and the day fails the test using it."""
    monkeypatch.setattr(queries, "CHECK_CACHED_SQL", True)


# Better Auth's tables, children before "user". Django's flush after a transactional test
# empties only the tables it manages; these are unmanaged.
BETTER_AUTH_TABLES = ["session", "account", "verification", "jwks", "user"]


def _is_transactional(request: pytest.FixtureRequest) -> bool:
    """As pytest-django decides whether a test gets TransactionTestCase (committed rows)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and any(validate_django_db(marker)[:2]):  # transaction, sequences
        return True
    return bool({"transactional_db", "live_server", "django_db_reset_sequences"}
                & set(request.fixturenames))  # fmt: skip


@pytest.fixture(autouse=True)
def _better_auth_rows_do_not_leak(request: pytest.FixtureRequest):
    """A transactional test's rows in Better Auth's tables are deleted after it; the rows
    that were there before (a session fixture's signing key, say) stay."""
    if not _is_transactional(request):
        yield
        return
    blocker = request.getfixturevalue("django_db_blocker")
    with blocker.unblock(), connection.cursor() as cursor:
        kept = {}
        for table in BETTER_AUTH_TABLES:
            cursor.execute(f"SELECT coalesce(array_agg(id), '{{}}') FROM \"{table}\"")
            kept[table] = cursor.fetchone()[0]
    yield
    with blocker.unblock(), connection.cursor() as cursor:
        for table in BETTER_AUTH_TABLES:
            cursor.execute(f'DELETE FROM "{table}" WHERE NOT (id = ANY(%s))', [kept[table]])


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def auth_client(user) -> APIClient:
    """A client authenticated as `user` without a token (auth is not what it tests)."""
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture(autouse=True)
def _rate_limits_off(settings):
    """Rate limits are off unless a test turns them on (tests/reliability/test_rate_limits.py):
    the suite sends far more writes and 401s from 127.0.0.1 than any real client."""
    settings.RATE_LIMIT_WRITES = ""
    settings.RATE_LIMIT_AUTH_FAILURES = ""
    settings.RATE_LIMIT_ADMIN_LOGIN_CLIENT = ""
    settings.RATE_LIMIT_ADMIN_LOGIN_ACCOUNT = ""


@pytest.fixture(autouse=True)
def _tombstone_purge_postponed(monkeypatch):
    """The hourly tombstone purge would add queries to whichever request comes first;
    tests/tasks/test_sync.py runs it on purpose."""
    from tasks import services

    monkeypatch.setattr(services, "_next_purge", float("inf"))


@pytest.fixture
def signing_key(db) -> SigningKey:
    """An EdDSA key pair stored in the jwks table, as Better Auth's jwt plugin makes one."""
    return create_signing_key("EdDSA")


@pytest.fixture
def jwt_client(user, signing_key) -> APIClient:
    """A client sending `user`'s real Better Auth JWT (the full authentication path)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer_for(user, signing_key))
    return client
