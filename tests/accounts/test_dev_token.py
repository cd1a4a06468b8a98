"""`manage.py dev_token`: a local user and a token this service accepts, never in production."""

from io import StringIO

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework import status

from accounts.jwts import verify_jwt
from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def debug(settings):
    settings.DEBUG = True  # pytest-django runs tests with DEBUG off


def dev_token(*args: str) -> str:
    stdout = StringIO()
    call_command("dev_token", *args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue().strip()


def test_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        dev_token("alice@example.com")

    assert not User.objects.exists()


def test_creates_the_user_and_prints_a_token_this_service_accepts():
    token = dev_token("Alice@Example.com", "--name", "Alice Example")

    user = User.objects.get(email="alice@example.com")
    assert user.name == "Alice Example"
    assert len(user.id) == 32
    assert verify_jwt(token).user_id == user.id


def test_reuses_an_existing_user():
    user = UserFactory(email="bob@example.com")

    token = dev_token("bob@example.com")

    assert User.objects.count() == 1
    assert verify_jwt(token).user_id == user.id


def test_token_lifetime_follows_hours():
    claims = jwt.decode(
        dev_token("carol@example.com", "--hours", "2"), options={"verify_signature": False}
    )

    assert claims["exp"] - claims["iat"] == 2 * 3600
    assert abs(claims["iat"] - timezone.now().timestamp()) < 5


def test_issuer_and_audience_are_the_better_auth_url_when_set(settings):
    settings.BETTER_AUTH_URL = "http://localhost:3000"
    settings.BETTER_AUTH_ISSUER = settings.BETTER_AUTH_AUDIENCE = "http://localhost:3000"

    token = dev_token("dave@example.com")

    claims = verify_jwt(token).claims
    assert claims["iss"] == claims["aud"] == "http://localhost:3000"


@pytest.mark.urls("tests.accounts.urls")
def test_token_authenticates_a_request(api_client):
    token = dev_token("erin@example.com")

    response = api_client.get("/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == status.HTTP_200_OK
    assert response.json()["user_id"] == User.objects.get(email="erin@example.com").id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-email"], "Not an email address"),
        (["frank@example.com", "--hours", "0"], "--hours"),
        (["frank@example.com", "--hours", "100000"], "--hours"),
    ],
)
def test_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        dev_token(*args)


def test_refuses_without_a_secret(settings):
    settings.BETTER_AUTH_SECRET = ""

    with pytest.raises(CommandError, match="BETTER_AUTH_SECRET"):
        dev_token("gina@example.com")
