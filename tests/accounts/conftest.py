"""Fixtures built from a real Better Auth 1.7 server's output (vectors.json, copied from it)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import dateparse

from accounts.models import Jwk, Session, User
from tests.tokens import insert_jwks_row

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text())


def parse_datetime(text: str) -> datetime:
    """Django's parse_datetime, for the vectors' timestamps (never malformed)."""
    value = dateparse.parse_datetime(text)
    assert value is not None, text
    return value


@pytest.fixture
def vectors() -> dict:
    return VECTORS


@pytest.fixture
def better_auth_settings(settings) -> dict:
    """Settings as the real server implies: its base URL is iss and aud; its secret."""
    settings.BETTER_AUTH_URL = VECTORS["base_url"]
    settings.BETTER_AUTH_ISSUER = VECTORS["base_url"]
    settings.BETTER_AUTH_AUDIENCE = VECTORS["base_url"]
    settings.BETTER_AUTH_SECRET = VECTORS["better_auth_secret"]
    return VECTORS


@pytest.fixture
def vector_user(db) -> User:
    user = VECTORS["user"]
    created = parse_datetime(VECTORS["jwt"]["payload"]["createdAt"])
    return User.objects.create(
        id=user["id"],
        email=user["email"],
        name=user["name"],
        created_at=created,
        updated_at=created,
    )


@pytest.fixture
def vector_key(db) -> Jwk:
    """The real server's signing key, stored as it stores it (publicKey without alg and kid)."""
    jwk = dict(VECTORS["jwks"]["keys"][0])
    kid = jwk.pop("kid")
    jwk.pop("alg")
    created = datetime.fromtimestamp(VECTORS["jwt"]["payload"]["iat"] - 60, tz=UTC)
    insert_jwks_row(kid, json.dumps(jwk), createdAt=created, alg="EdDSA", crv="Ed25519")
    return Jwk.objects.get(pk=kid)


@pytest.fixture
def vector_session(vector_user) -> Session:
    row = VECTORS["session"]["row"]
    return Session.objects.create(
        id=row["id"],
        token=row["token"],
        user=vector_user,
        expires_at=parse_datetime(row["expiresAt"]),
        created_at=parse_datetime(row["createdAt"]),
        updated_at=parse_datetime(row["updatedAt"]),
        ip_address=row["ipAddress"],
        user_agent=row["userAgent"],
    )


@pytest.fixture
def at_vector_time():
    """The clock frozen one minute after the real JWT was issued (it lives 15 minutes)."""
    issued = datetime.fromtimestamp(VECTORS["jwt"]["payload"]["iat"], tz=UTC)
    with time_machine.travel(issued + timedelta(minutes=1), tick=False) as traveller:
        yield traveller
