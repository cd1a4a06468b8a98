"""Better Auth's tables as versions and configurations really leave them, and broken ones:
keys read by what a table has, the algorithm from the key, a system check that says what
is wrong, and 401/503 JSON (never a 500) at request time.

The tables are altered inside each test's transaction (PostgreSQL DDL is transactional),
so every test starts from the suite's schema again.
"""

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import jwts
from accounts.better_auth import renamed_ddl, user_ids
from accounts.checks import better_auth_tables
from accounts.credentials import TokenError
from accounts.jwts import verify_jwt
from accounts.models import Session, User
from tests.tokens import (
    SigningKey,
    create_signing_key,
    generate_private_key,
    hs256_signed_with,
    public_jwk,
    store_public_key,
)

pytestmark = pytest.mark.django_db

ME = "/api/me"


def alter(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    jwts.clear_key_cache()


def rejected(token: str) -> str:
    with pytest.raises(TokenError) as error:
        verify_jwt(token)
    return str(error.value)


def session_for(user: User) -> Session:
    now = timezone.now()
    return Session.objects.create(
        id="s-" + user.id,
        token="tok-" + user.id,
        user=user,
        expires_at=now + timedelta(days=7),
        created_at=now,
        updated_at=now,
    )


class TestVersionsJwksTables:
    def test_better_auth_1_4_jwks_without_alg_and_crv(self, user, jwt_client):
        # 1.4.9's own migration: id, publicKey, privateKey, createdAt, expiresAt.
        alter("ALTER TABLE jwks DROP COLUMN alg", "ALTER TABLE jwks DROP COLUMN crv")

        response = jwt_client.get(ME)

        assert response.status_code == 200, response.json()
        assert response.json()["user"]["id"] == user.id

    def test_better_auth_1_3_jwks_without_expires_at(self, user):
        alter(*(f'ALTER TABLE jwks DROP COLUMN "{name}"' for name in ("expiresAt", "alg", "crv")))
        key = SigningKey("k13", "EdDSA", generate_private_key("EdDSA"))
        with connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO jwks (id, "publicKey", "privateKey", "createdAt") '
                "VALUES (%s, %s, 'encrypted', now())",
                [key.kid, json.dumps(_public_jwk(key))],
            )

        assert verify_jwt(key.token_for(user)).user_id == user.id

    def test_extra_columns_of_later_versions_and_plugins_change_nothing(self, user, jwt_client):
        alter(
            'ALTER TABLE "user" ADD COLUMN role text, ADD COLUMN banned boolean',
            'ALTER TABLE "user" ADD COLUMN "displayUsername" text',
            'ALTER TABLE session ADD COLUMN "activeOrganizationId" text',
            "ALTER TABLE jwks ADD COLUMN something_new jsonb",
        )
        session = session_for(user)

        assert jwt_client.get(ME).status_code == 200
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {session.token}")
        assert client.get(ME).status_code == 200
        assert better_auth_tables() == []


class TestAlgorithmFromTheKey:
    @pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
    def test_rsa_key_without_alg_verifies_both_rsa_algorithms(self, user, algorithm):
        key = create_signing_key("RS256", alg_column=False)

        assert verify_jwt(SigningKey(key.kid, algorithm, key.private_key).token_for(user))

    def test_a_declared_alg_narrows_the_family(self, user):
        key = create_signing_key("RS256")  # alg column: RS256

        ps256 = SigningKey(key.kid, "PS256", key.private_key).token_for(user)

        assert rejected(ps256) == "algorithm not allowed for this key"

    @pytest.mark.parametrize(
        ("stored", "claimed"),
        [("EdDSA", "ES256"), ("ES256", "ES512"), ("ES512", "ES256"), ("ES256", "EdDSA")],
    )
    def test_another_familys_algorithm_is_refused(self, user, stored, claimed):
        key = create_signing_key(stored, alg_column=False)
        other = SigningKey(key.kid, claimed, generate_private_key(claimed))

        assert rejected(other.token_for(user)) == "algorithm not allowed for this key"

    def test_a_declared_alg_of_another_family_disables_the_key(self, user, caplog):
        private_key = generate_private_key("ES256")
        store_public_key("mismatch", private_key, "ES256", alg_column=False)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE jwks SET alg = 'RS256' WHERE id = 'mismatch'")
        jwts.clear_key_cache()

        with caplog.at_level(logging.WARNING, logger="accounts.keys"):
            token = SigningKey("mismatch", "ES256", private_key).token_for(user)
            assert rejected(token) == "unknown key id"
        assert "mismatch: alg 'RS256' does not fit" in caplog.text

    def test_rsa_key_never_verifies_hs256_even_signed_with_its_public_key(self, user):
        key = create_signing_key("RS256", alg_column=False)
        public_pem = key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        claims = {"sub": user.id, "exp": 4_000_000_000}

        token = hs256_signed_with(public_pem, {"alg": "HS256", "kid": key.kid}, claims)

        assert rejected(token) == "invalid signature"  # checked with the secret, never the key


class TestSystemCheck:
    def test_better_auths_schema_passes(self):
        assert better_auth_tables() == []

    def test_a_renamed_column_is_named_with_the_setting_that_fixes_it(self):
        alter('ALTER TABLE "user" RENAME COLUMN "emailVerified" TO email_verified')

        [error] = better_auth_tables()

        assert error.id == "accounts.E002"
        assert "'user' has no column 'emailVerified'" in error.msg
        assert "BETTER_AUTH_SCHEMA user.fields.emailVerified" in error.msg
        assert "email_verified" in error.msg  # what the table has instead
        assert "BETTER_AUTH_SCHEMA" in str(error.hint)

    def test_every_problem_is_in_one_message(self):
        alter(
            'ALTER TABLE "user" RENAME COLUMN "createdAt" TO created_at',
            'ALTER TABLE session RENAME COLUMN "userId" TO user_id',
        )

        [error] = better_auth_tables()

        assert "'createdAt'" in error.msg
        assert "BETTER_AUTH_SCHEMA session.fields.userId" in error.msg

    def test_no_jwks_table_is_a_warning_sessions_still_work(self):
        alter("DROP TABLE jwks")

        [warning] = better_auth_tables()

        assert warning.id == "accounts.W002"
        assert "no table 'jwks'" in warning.msg
        assert "JWTs cannot be verified" in warning.msg

    def test_no_jwks_table_is_fine_with_a_jwks_url(self, settings):
        settings.BETTER_AUTH_JWKS_URL = "https://auth.example/api/auth/jwks"
        alter("DROP TABLE jwks")

        assert better_auth_tables() == []

    def test_no_user_table(self):
        alter('DROP TABLE "user" CASCADE')

        [error] = better_auth_tables()

        assert "no table 'user' (BETTER_AUTH_SCHEMA user.modelName)" in error.msg

    def test_malformed_setting(self, settings):
        settings.BETTER_AUTH_SCHEMA = {"users": {}, "user": {"fields": {"emailVerifed": "x"}}}

        [error] = better_auth_tables()

        assert error.id == "accounts.E001"
        assert "unknown model 'users'" in error.msg
        assert "user.fields: unknown field 'emailVerifed'" in error.msg

    def test_manage_py_check_shows_it(self):
        alter('ALTER TABLE session RENAME COLUMN "expiresAt" TO expires_at')

        with pytest.raises(SystemCheckError, match="'session' has no column 'expiresAt'"):
            call_command("check")


class TestRequestsOnABrokenSchema:
    def test_renamed_user_column_is_a_503_logged_once(self, user, jwt_client, caplog):
        alter('ALTER TABLE "user" RENAME COLUMN "emailVerified" TO email_verified')

        with caplog.at_level(logging.ERROR, logger="config.errors"):
            response = jwt_client.get(ME)

        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "emailVerified" in caplog.text  # the real cause, for the operator

    def test_renamed_session_column_is_a_503(self, user):
        session = session_for(user)
        alter('ALTER TABLE session RENAME COLUMN "expiresAt" TO expires_at')
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {session.token}")

        response = client.get(ME)

        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"

    def test_no_jwks_table_a_jwt_is_a_401_and_a_session_works(self, user, signing_key, caplog):
        token = signing_key.token_for(user)
        session = session_for(user)
        alter("DROP TABLE jwks")
        client = APIClient()

        with caplog.at_level(logging.WARNING, logger="accounts.keys"):
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            refused = client.get(ME)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {session.token}")

        assert refused.status_code == 401
        assert refused.json()["detail"] == "unknown key id"
        assert "no 'jwks' table" in caplog.text
        assert client.get(ME).status_code == 200


class TestIds:
    def test_this_suites_user_ids_are_text(self):
        assert user_ids.sql_type(connection) == "text"
        assert user_ids.accepts("anything at all")

    @pytest.mark.parametrize(
        ("kind", "value", "accepted"),
        [
            ("uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", True),
            ("uuid", "0F8FAD5BD9CB469FA16570867728950E", True),
            ("uuid", "not-a-uuid", False),
            ("uuid", "0f8fad5b-d9cb-469f-a165-70867728950e'", False),
            ("integer", "42", True),
            ("integer", "2147483648", False),
            ("integer", "４２", False),  # Unicode digits: not an integer to PostgreSQL
            ("bigint", "-1", False),
        ],
    )
    def test_values_of_another_type_never_reach_the_database(
        self, monkeypatch, kind, value, accepted
    ):
        monkeypatch.setattr(user_ids, "sql_type", lambda connection: kind)

        assert user_ids.accepts(value) is accepted


def test_renamed_ddl_uses_the_settings_names(settings):
    settings.BETTER_AUTH_SCHEMA = {
        "user": {"modelName": "users"},
        "session": {"modelName": "sessions", "fields": {"userId": "user_id"}},
    }
    ddl = (
        'create table "session" ("id" text not null primary key, '
        '"userId" text not null references "user" ("id") on delete cascade)'
    )

    assert renamed_ddl(ddl, "session") == (
        'create table "sessions" ("id" text not null primary key, '
        '"user_id" text not null references "users" ("id") on delete cascade)'
    )


def _public_jwk(key: SigningKey) -> dict:
    return public_jwk(key.private_key, key.algorithm)


SQLITE_SCRIPT = """
import django
django.setup()
from datetime import timedelta
from django.core.management import call_command
from django.utils import timezone
from accounts.jwts import verify_jwt
from tests.factories import UserFactory
from tests.tokens import create_signing_key

call_command("migrate", verbosity=0)
user = UserFactory()
key = create_signing_key("EdDSA", expires_at=timezone.now() + timedelta(days=1))
old = create_signing_key("EdDSA", expires_at=timezone.now() - timedelta(days=90))
print(verify_jwt(key.token_for(user)).user_id == user.id)
try:
    verify_jwt(old.token_for(user))
except Exception as error:
    print(error)
"""


def test_keys_and_their_expiry_on_the_embedded_sqlite_default(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip

    assert result.stdout.split("\n")[:2] == ["True", "unknown key id"], result.stderr
