import pytest
from rest_framework.test import APIClient

from accounts.tokens import clear_key_cache
from tests.factories import UserFactory
from tests.tokens import SigningKey, bearer_for, create_signing_key


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    """Cached Better Auth keys never leak from one test into the next."""
    clear_key_cache()
    yield
    clear_key_cache()


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
