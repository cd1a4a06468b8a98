import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory


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
