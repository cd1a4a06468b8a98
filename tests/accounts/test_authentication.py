"""The authentication classes over HTTP, with real tokens, on a test-only endpoint."""

from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework import status
from rest_framework.test import APIRequestFactory

from accounts.authentication import BetterAuthJWTAuthentication, BetterAuthSessionAuthentication
from accounts.models import Jwk, User
from tests.accounts.urls import urlpatterns
from tests.factories import SessionFactory, UserFactory
from tests.tokens import (
    SigningKey,
    app_token,
    bearer_for,
    better_auth_claims,
    forge,
    generate_private_key,
    hs256_signed_with,
    session_cookie_value,
    signed_session_token,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.urls")]

URL = "/whoami"
TRUSTED_ORIGIN = "http://localhost:3000"  # in CORS_ALLOWED_ORIGINS by default (DEBUG settings)


def assert_unauthorized(response, message: str) -> None:
    """A 401 in the project's error shape, inviting a Bearer token."""
    assert response.status_code == status.HTTP_401_UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "detail": message,
        "error": {"code": "AUTH_REQUIRED", "message": message, "details": None},
    }


def get(client, authorization: str | None = None, **extra):
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    return client.get(URL, **extra)


@pytest.fixture
def session(user):
    return SessionFactory(user=user)


@pytest.fixture
def trusted_origins(settings):
    settings.CORS_ALLOWED_ORIGINS = [TRUSTED_ORIGIN]
    settings.BETTER_AUTH_TRUSTED_ORIGINS = ["https://app.example"]
    settings.CSRF_TRUSTED_ORIGINS = []


class TestAccepted:
    def test_better_auth_jwt(self, api_client, user, signing_key):
        response = get(api_client, bearer_for(user, signing_key))

        assert response.status_code == status.HTTP_200_OK
        assert response.json() == {"user_id": user.id, "auth": "dict"}  # request.auth: the claims

    def test_app_signed_hs256_jwt(self, api_client, user):
        response = get(api_client, bearer_for(user))

        assert response.status_code == status.HTTP_200_OK
        assert response.json()["user_id"] == user.id

    def test_bearer_keyword_is_case_insensitive(self, api_client, user):
        response = get(api_client, f"bearer {app_token(user.id)}")

        assert response.status_code == status.HTTP_200_OK

    def test_raw_session_token(self, api_client, user, session):
        response = get(api_client, f"Bearer {session.token}")

        assert response.status_code == status.HTTP_200_OK
        assert response.json() == {"user_id": user.id, "auth": "Session"}

    def test_signed_session_token(self, api_client, user, session):
        response = get(api_client, f"Bearer {signed_session_token(session.token)}")

        assert response.status_code == status.HTTP_200_OK
        assert response.json()["user_id"] == user.id

    @pytest.mark.parametrize(
        "cookie_name", ["better-auth.session_token", "__Secure-better-auth.session_token"]
    )
    def test_session_cookie(self, api_client, user, session, cookie_name):
        api_client.cookies[cookie_name] = session_cookie_value(session)

        response = api_client.get(URL)

        assert response.status_code == status.HTTP_200_OK
        assert response.json()["user_id"] == user.id

    @pytest.mark.usefixtures("trusted_origins")
    @pytest.mark.parametrize("origin", [TRUSTED_ORIGIN, "https://app.example"])
    def test_cookie_post_from_a_trusted_origin(self, api_client, session, origin):
        api_client.cookies["better-auth.session_token"] = session_cookie_value(session)

        response = api_client.post(URL, HTTP_ORIGIN=origin)

        assert response.status_code == status.HTTP_200_OK

    @pytest.mark.usefixtures("trusted_origins")
    def test_cookie_post_with_a_trusted_referer_and_no_origin(self, api_client, session):
        api_client.cookies["better-auth.session_token"] = session_cookie_value(session)

        response = api_client.post(URL, HTTP_REFERER=f"{TRUSTED_ORIGIN}/dashboard?tab=1")

        assert response.status_code == status.HTTP_200_OK

    def test_bearer_post_needs_no_origin(self, api_client, user, session):
        response = api_client.post(URL, HTTP_AUTHORIZATION=f"Bearer {session.token}")

        assert response.status_code == status.HTTP_200_OK


class TestRealBetterAuthCredentials:
    def test_real_jwt(
        self, api_client, better_auth_settings, vector_key, vector_user, at_vector_time
    ):
        response = get(api_client, f"Bearer {better_auth_settings['jwt']['token']}")

        assert response.status_code == status.HTTP_200_OK
        assert response.json()["user_id"] == vector_user.id

    @pytest.mark.parametrize("form", ["token", "signed_value"])
    def test_real_session_token_as_bearer(
        self, api_client, better_auth_settings, vector_session, at_vector_time, form
    ):
        response = get(api_client, f"Bearer {better_auth_settings['session'][form]}")

        assert response.status_code == status.HTTP_200_OK
        assert response.json() == {"user_id": vector_session.user_id, "auth": "Session"}

    def test_real_session_cookie(
        self, api_client, better_auth_settings, vector_session, at_vector_time
    ):
        session = better_auth_settings["session"]
        api_client.cookies[session["cookie_name"]] = session["cookie_value_as_sent"]

        response = api_client.get(URL)

        assert response.status_code == status.HTTP_200_OK
        assert response.json()["user_id"] == vector_session.user_id


class TestRejected:
    @pytest.mark.parametrize("value", ["abc%00def", "abc%01def", "abc%0Adef"])
    def test_session_token_with_control_characters(self, api_client, value):
        # PostgreSQL text cannot hold NUL: sent to the database, this was a 500.
        assert_unauthorized(get(api_client, f"Bearer {value}"), "malformed session token")

    def test_no_credentials(self, api_client):
        assert_unauthorized(get(api_client), "Authentication credentials were not provided.")

    def test_wrong_scheme(self, api_client, user):
        response = get(api_client, f"Basic {app_token(user.id)}")

        assert_unauthorized(response, "Authentication credentials were not provided.")

    @pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer  a.b.c  d"])
    def test_malformed_header(self, api_client, header):
        response = get(api_client, header)

        assert_unauthorized(response, "invalid Authorization header: expected 'Bearer <token>'")

    def test_non_ascii_token(self, api_client):
        response = get(api_client, "Bearer t\u00f6ken")

        assert_unauthorized(response, "invalid Authorization header: expected 'Bearer <token>'")

    def test_bad_signature(self, api_client, user, signing_key):
        impostor = SigningKey(signing_key.kid, "EdDSA", generate_private_key("EdDSA"))

        assert_unauthorized(get(api_client, bearer_for(user, impostor)), "invalid signature")

    def test_tampered_payload(self, api_client, user, other_user, signing_key):
        header, _, signature = signing_key.token_for(user).split(".")
        forged = signing_key.token_for(other_user).split(".")[1]

        response = get(api_client, f"Bearer {header}.{forged}.{signature}")

        assert_unauthorized(response, "invalid signature")

    def test_alg_none(self, api_client, user, signing_key):
        token = forge({"alg": "none", "kid": signing_key.kid}, better_auth_claims(user))

        assert_unauthorized(get(api_client, f"Bearer {token}"), "unsupported algorithm")

    def test_hs256_signed_with_the_public_key(self, api_client, user, signing_key):
        public_key = Jwk.objects.get(pk=signing_key.kid).public_key.encode()
        header = {"alg": "HS256", "kid": signing_key.kid}
        token = hs256_signed_with(public_key, header, better_auth_claims(user))

        assert_unauthorized(get(api_client, f"Bearer {token}"), "invalid signature")

    def test_expired(self, api_client, user, signing_key):
        now = int(timezone.now().timestamp())
        token = signing_key.token_for(user, iat=now - 3600, exp=now - 600)

        assert_unauthorized(get(api_client, f"Bearer {token}"), "token expired")

    def test_not_yet_valid(self, api_client, user, signing_key):
        token = signing_key.token_for(user, nbf=int(timezone.now().timestamp()) + 600)

        assert_unauthorized(get(api_client, f"Bearer {token}"), "token not yet valid")

    def test_wrong_issuer(self, api_client, settings, user, signing_key):
        settings.BETTER_AUTH_ISSUER = "http://localhost:3000"
        token = signing_key.token_for(user, iss="https://evil.example")

        assert_unauthorized(get(api_client, f"Bearer {token}"), "invalid issuer")

    def test_wrong_audience(self, api_client, settings, user, signing_key):
        settings.BETTER_AUTH_AUDIENCE = "http://localhost:3000"
        token = signing_key.token_for(user, aud="https://another-api.example")

        assert_unauthorized(get(api_client, f"Bearer {token}"), "invalid audience")

    def test_unknown_kid(self, api_client, user, signing_key):
        stranger = SigningKey("unknown-kid", "EdDSA", signing_key.private_key)

        assert_unauthorized(get(api_client, bearer_for(user, stranger)), "unknown key id")

    def test_unknown_user(self, api_client, signing_key):
        ghost = UserFactory.build()  # never saved: a valid token for a user who does not exist

        assert_unauthorized(get(api_client, bearer_for(ghost, signing_key)), "user not found")

    def test_deleted_user(self, api_client, user, signing_key):
        authorization = bearer_for(user, signing_key)
        user.delete()

        assert_unauthorized(get(api_client, authorization), "user not found")

    def test_oversized_token(self, api_client):
        response = get(api_client, "Bearer " + "a" * 5000 + "." + "b" * 5000 + ".c")

        assert_unauthorized(response, "token too large")

    def test_oversized_header(self, api_client):
        assert_unauthorized(get(api_client, "Bearer " + "a" * 20_000), "token too large")

    def test_deleted_session(self, api_client, session):
        token = session.token
        session.delete()  # what signing out does

        assert_unauthorized(get(api_client, f"Bearer {token}"), "session not found")

    def test_expired_session(self, api_client, user):
        session = SessionFactory(user=user, expires_at=timezone.now() - timedelta(seconds=1))

        assert_unauthorized(get(api_client, f"Bearer {session.token}"), "session expired")

    def test_bad_session_token_signature(self, api_client, session):
        forged = signed_session_token(session.token, secret="not-the-secret-" * 4)

        assert_unauthorized(get(api_client, f"Bearer {forged}"), "invalid signature")

    def test_bad_cookie_signature(self, api_client, session):
        forged = session_cookie_value(session, secret="not-the-secret-" * 4)
        api_client.cookies["better-auth.session_token"] = forged

        assert_unauthorized(api_client.get(URL), "invalid signature")

    def test_unsigned_cookie(self, api_client, session):
        api_client.cookies["better-auth.session_token"] = session.token

        assert_unauthorized(api_client.get(URL), "session token is not signed")

    @pytest.mark.usefixtures("trusted_origins")
    @pytest.mark.parametrize(
        "headers",
        [
            {"HTTP_ORIGIN": "https://evil.example"},
            {"HTTP_ORIGIN": "null"},
            {"HTTP_REFERER": "https://evil.example/page"},
            {},
        ],
        ids=["origin", "null-origin", "referer", "none"],
    )
    def test_cookie_post_from_an_untrusted_origin(self, api_client, session, headers):
        # Credentials are fine, the request's source is not: 403, as DRF's CSRF failures.
        api_client.cookies["better-auth.session_token"] = session_cookie_value(session)

        response = api_client.post(URL, **headers)

        assert response.status_code == status.HTTP_403_FORBIDDEN
        assert response.json()["error"]["code"] == "FORBIDDEN"
        assert response.json()["detail"] == "CSRF failed: untrusted origin"

    def test_failed_jwt_is_not_retried_as_a_session(self, api_client, user, session, signing_key):
        # A valid session cookie does not rescue a bad JWT: the Bearer credential decides.
        impostor = SigningKey(signing_key.kid, "EdDSA", generate_private_key("EdDSA"))
        api_client.cookies["better-auth.session_token"] = session_cookie_value(session)

        assert_unauthorized(get(api_client, bearer_for(user, impostor)), "invalid signature")

    def test_jwt_shaped_session_lookalike_gets_the_jwt_error(self, api_client, user, session):
        response = get(api_client, f"Bearer {session.token}.x.y")

        assert_unauthorized(response, "malformed token")


class TestQueryCount:
    def test_jwt_request_costs_one_query_with_keys_cached(
        self, api_client, user, signing_key, django_assert_num_queries
    ):
        authorization = bearer_for(user, signing_key)
        get(api_client, authorization)  # loads the keys

        with django_assert_num_queries(1):
            response = get(api_client, authorization)

        assert response.status_code == status.HTTP_200_OK

    def test_first_jwt_request_also_loads_the_keys(
        self, api_client, user, signing_key, django_assert_num_queries
    ):
        # The jwks table's columns (they differ between Better Auth versions), its keys, the user.
        with django_assert_num_queries(3):
            assert get(api_client, bearer_for(user, signing_key)).status_code == 200

    def test_app_token_request_costs_one_query(self, api_client, user, django_assert_num_queries):
        with django_assert_num_queries(1):
            assert get(api_client, bearer_for(user)).status_code == 200

    def test_session_request_costs_one_query(self, api_client, session, django_assert_num_queries):
        with django_assert_num_queries(1):
            assert get(api_client, f"Bearer {session.token}").status_code == 200


class TestContract:
    """DRF's contract for authentication classes, without HTTP."""

    factory = APIRequestFactory()

    @pytest.mark.parametrize(
        "authentication", [BetterAuthJWTAuthentication, BetterAuthSessionAuthentication]
    )
    def test_other_schemes_are_not_ours(self, authentication):
        request = self.factory.get(URL, HTTP_AUTHORIZATION="Token abc")

        assert authentication().authenticate(request) is None

    def test_session_tokens_are_left_to_the_session_class(self):
        request = self.factory.get(URL, HTTP_AUTHORIZATION="Bearer abc.c2ln")

        assert BetterAuthJWTAuthentication().authenticate(request) is None

    def test_jwts_are_left_to_the_jwt_class(self):
        request = self.factory.get(URL, HTTP_AUTHORIZATION="Bearer a.b.c")

        assert BetterAuthSessionAuthentication().authenticate(request) is None

    @pytest.mark.parametrize(
        "authentication", [BetterAuthJWTAuthentication, BetterAuthSessionAuthentication]
    )
    def test_failures_ask_for_a_bearer_token(self, authentication):
        assert authentication().authenticate_header(self.factory.get(URL)) == "Bearer"


def test_openapi_schema_documents_bearer_and_cookie_auth():
    schema = SchemaGenerator(patterns=urlpatterns).get_schema(request=None, public=True)

    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["bearerAuth"]["bearerFormat"] == "JWT"
    assert schemes["cookieAuth"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "better-auth.session_token",
        "description": schemes["cookieAuth"]["description"],
    }
    assert schema["paths"]["/whoami"]["get"]["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]


def test_jwt_client_fixture_sends_a_real_better_auth_jwt(jwt_client, user):
    response = jwt_client.get(URL)

    assert response.status_code == status.HTTP_200_OK
    assert response.json() == {"user_id": user.id, "auth": "dict"}


class TestUserById:
    def test_loads_the_same_user_as_the_orm(self, user):
        loaded = User.objects.by_id(user.pk)

        assert loaded is not None
        expected = User.objects.get(pk=user.pk)
        assert [getattr(loaded, f.attname) for f in User._meta.concrete_fields] == [
            getattr(expected, f.attname) for f in User._meta.concrete_fields
        ]
        assert loaded._state.adding is False

    def test_unknown_id_is_none(self, user):
        assert User.objects.by_id(user.pk + "x") is None
        assert User.objects.by_id("") is None

    def test_costs_one_query(self, user, django_assert_num_queries):
        with django_assert_num_queries(1):
            assert User.objects.by_id(user.pk) == user
