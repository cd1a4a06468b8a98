"""accounts/jwts.py, keys.py and sessions.py without HTTP: real keys, real signatures, keys
from the jwks table."""

import json
import logging
from datetime import timedelta
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings as django_settings
from django.utils import timezone

from accounts import jwts, keys, sessions
from accounts.credentials import TokenError
from accounts.jwts import verify_jwt
from accounts.models import Jwk
from tests.tokens import (
    ALGORITHMS,
    SigningKey,
    app_token,
    b64url,
    better_auth_claims,
    create_signing_key,
    forge,
    generate_private_key,
    hs256_signed_with,
    insert_jwks_row,
    signed_session_token,
    store_public_key,
)

pytestmark = pytest.mark.django_db


def rejected(token: str) -> str:
    with pytest.raises(TokenError) as error:
        verify_jwt(token)
    return str(error.value)


class TestRealBetterAuthToken:
    def test_real_jwt_verifies_with_its_jwks_row(
        self, better_auth_settings, vector_key, at_vector_time
    ):
        verified = verify_jwt(better_auth_settings["jwt"]["token"])

        assert verified.user_id == better_auth_settings["user"]["id"]
        assert verified.algorithm == "EdDSA"
        assert verified.claims == better_auth_settings["jwt"]["payload"]

    def test_real_jwt_expires_after_fifteen_minutes(
        self, better_auth_settings, vector_key, at_vector_time
    ):
        at_vector_time.shift(timedelta(minutes=15, seconds=jwts.LEEWAY_SECONDS))

        assert rejected(better_auth_settings["jwt"]["token"]) == "token expired"

    def test_real_jwt_needs_its_key_in_the_jwks_table(self, better_auth_settings, at_vector_time):
        assert rejected(better_auth_settings["jwt"]["token"]) == "unknown key id"

    def test_real_session_signature_matches_better_auth(self, vectors):
        session = vectors["session"]

        signature = sessions.sign_session_token(session["token"], vectors["better_auth_secret"])

        assert f"{session['token']}.{signature}" == session["signed_value"]
        assert quote(session["signed_value"], safe="") == session["cookie_value_as_sent"]

    @pytest.mark.parametrize("form", ["token", "signed_value", "cookie_value_as_sent"])
    def test_real_session_credentials_yield_the_token(self, better_auth_settings, form):
        value = better_auth_settings["session"][form]

        token = sessions.session_token_from(value, require_signature=form != "token")

        assert token == better_auth_settings["session"]["token"]


class TestSupportedAlgorithms:
    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_better_auth_token_of_each_algorithm_verifies(self, user, algorithm):
        key = create_signing_key(algorithm)

        verified = verify_jwt(key.token_for(user))

        assert verified.user_id == user.id
        assert verified.algorithm == algorithm
        assert verified.claims["email"] == user.email

    def test_key_row_without_alg_column_is_inferred_from_the_jwk(self, user):
        # Older Better Auth versions left jwks.alg empty for the default EdDSA key.
        key = create_signing_key("EdDSA", alg_column=False)

        assert verify_jwt(key.token_for(user)).algorithm == "EdDSA"

    def test_app_signed_hs256_token_verifies(self, user):
        verified = verify_jwt(app_token(user.id))

        assert verified.user_id == user.id
        assert verified.algorithm == "HS256"

    @pytest.mark.parametrize("claim", ["id", "user_id", "userId"])
    def test_app_token_subject_falls_back_to_user_id_claims(self, user, claim):
        token = jwt.encode(
            {claim: user.id, "exp": int(timezone.now().timestamp()) + 60}, _secret(), "HS256"
        )

        assert verify_jwt(token).user_id == user.id

    def test_better_auth_token_needs_sub(self, user, signing_key):
        claims = better_auth_claims(user)
        del claims["sub"]

        assert rejected(signing_key.sign(claims)) == "token has no subject"

    def test_app_token_without_iss_and_aud_is_accepted_where_they_are_configured(
        self, settings, user
    ):
        settings.BETTER_AUTH_ISSUER = settings.BETTER_AUTH_AUDIENCE = "http://localhost:3000"

        assert verify_jwt(app_token(user.id)).user_id == user.id

    def test_app_token_with_a_wrong_issuer_is_rejected(self, settings, user):
        settings.BETTER_AUTH_ISSUER = "http://localhost:3000"

        assert rejected(app_token(user.id, iss="https://evil.example")) == "invalid issuer"

    def test_app_token_with_a_wrong_audience_is_rejected(self, settings, user):
        settings.BETTER_AUTH_AUDIENCE = "http://localhost:3000"

        assert rejected(app_token(user.id, aud=["https://other.example"])) == "invalid audience"

    def test_empty_issuer_and_audience_settings_disable_the_checks(self, settings, user):
        settings.BETTER_AUTH_ISSUER = settings.BETTER_AUTH_AUDIENCE = ""
        key = create_signing_key()

        token = key.token_for(user, iss="https://other.example", aud="https://other.example")

        assert verify_jwt(token).user_id == user.id

    def test_audience_may_be_a_list(self, settings, user, signing_key):
        settings.BETTER_AUTH_AUDIENCE = "http://localhost:3000"

        token = signing_key.token_for(user, aud=["https://other.example", "http://localhost:3000"])

        assert verify_jwt(token).user_id == user.id

    def test_expiry_within_the_leeway_is_tolerated(self, user, signing_key):
        now = int(timezone.now().timestamp())

        token = signing_key.token_for(user, iat=now - 900, exp=now - jwts.LEEWAY_SECONDS // 2)

        assert verify_jwt(token).user_id == user.id


class TestRejectedTokens:
    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_bad_signature(self, user, algorithm):
        key = create_signing_key(algorithm)
        impostor = SigningKey(key.kid, algorithm, generate_private_key(algorithm))

        assert rejected(impostor.token_for(user)) == "invalid signature"
        header, payload, signature = key.token_for(user).split(".")
        assert rejected(f"{header}.{payload}.{signature[:-8]}") == "invalid signature"

    def test_tampered_payload(self, user, other_user, signing_key):
        header, _, signature = signing_key.token_for(user).split(".")
        payload = b64url(json.dumps(better_auth_claims(other_user)).encode())

        assert rejected(f"{header}.{payload}.{signature}") == "invalid signature"

    def test_alg_none(self, user, signing_key):
        token = forge({"alg": "none", "kid": signing_key.kid}, better_auth_claims(user))

        assert rejected(token) == "unsupported algorithm"

    @pytest.mark.parametrize("algorithm", ["HS384", "HS512", "ES384", "RS512", "PS512", "none"])
    def test_algorithm_outside_the_allow_list(self, user, algorithm):
        token = forge({"alg": algorithm, "kid": "k"}, better_auth_claims(user), b"x" * 64)

        assert rejected(token) == "unsupported algorithm"

    @pytest.mark.parametrize("form", ["jwk_json", "pem"])
    def test_hs256_signed_with_the_public_key_is_rejected(self, user, signing_key, form):
        # Algorithm confusion: the attacker knows the public key and uses it as an HMAC secret.
        row = Jwk.objects.get(pk=signing_key.kid)
        public_key = signing_key.private_key.public_key()
        secret = {
            "jwk_json": row.public_key.encode(),
            "pem": public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        }[form]
        header = {"alg": "HS256", "kid": signing_key.kid}

        assert rejected(hs256_signed_with(secret, header, better_auth_claims(user))) == (
            "invalid signature"
        )

    def test_token_algorithm_must_match_its_key(self, user):
        rsa_key = create_signing_key("RS256")
        as_pss = SigningKey(rsa_key.kid, "PS256", rsa_key.private_key)

        assert rejected(as_pss.token_for(user)) == "algorithm not allowed for this key"

    def test_expired(self, user, signing_key):
        now = int(timezone.now().timestamp())

        token = signing_key.token_for(user, iat=now - 3600, exp=now - 120)

        assert rejected(token) == "token expired"

    def test_not_yet_valid(self, user, signing_key):
        now = int(timezone.now().timestamp())

        assert rejected(signing_key.token_for(user, nbf=now + 300)) == "token not yet valid"

    def test_issued_in_the_future(self, user, signing_key):
        now = int(timezone.now().timestamp())

        token = signing_key.token_for(user, iat=now + 300, exp=now + 1200)

        assert rejected(token) == "token not yet valid"

    def test_missing_exp(self, user, signing_key):
        claims = better_auth_claims(user)
        del claims["exp"]

        assert rejected(signing_key.sign(claims)) == "token has no exp claim"

    def test_app_token_without_exp(self, user):
        token = jwt.encode({"sub": user.id}, _secret(), "HS256")

        assert rejected(token) == "token has no exp claim"

    def test_wrong_issuer(self, settings, user, signing_key):
        settings.BETTER_AUTH_ISSUER = "http://localhost:3000"

        token = signing_key.token_for(user, iss="https://evil.example")

        assert rejected(token) == "invalid issuer"

    def test_missing_issuer_on_a_better_auth_token(self, settings, user, signing_key):
        settings.BETTER_AUTH_ISSUER = "http://localhost:3000"
        claims = better_auth_claims(user)
        del claims["iss"]

        assert rejected(signing_key.sign(claims)) == "invalid issuer"

    def test_wrong_audience(self, settings, user, signing_key):
        settings.BETTER_AUTH_AUDIENCE = "http://localhost:3000"

        token = signing_key.token_for(user, aud="https://other-api.example")

        assert rejected(token) == "invalid audience"

    def test_unknown_kid(self, user, signing_key):
        stranger = SigningKey("no-such-kid", "EdDSA", signing_key.private_key)

        assert rejected(stranger.token_for(user)) == "unknown key id"

    def test_missing_kid(self, user, signing_key):
        token = jwt.encode(better_auth_claims(user), signing_key.private_key, "EdDSA")

        assert rejected(token) == "unknown key id"

    def test_wrong_hs256_secret(self, user):
        assert rejected(app_token(user.id, secret="x" * 40)) == "invalid signature"

    def test_hs256_refused_without_a_secret(self, settings, user):
        token = app_token(user.id)
        settings.BETTER_AUTH_SECRET = ""

        assert rejected(token) == "unsupported algorithm"

    def test_oversized_token_is_refused_before_any_decoding(self, monkeypatch):
        _forbid_decoding(monkeypatch)
        token = "a" * 10 + "." + "b" * jwts.MAX_TOKEN_LENGTH + ".c"

        assert rejected(token) == "token too large"

    def test_oversized_header_is_refused_before_any_decoding(self, monkeypatch):
        _forbid_decoding(monkeypatch)
        token = "e" * (jwts.MAX_JWT_HEADER_LENGTH + 1) + ".e30.c2ln"

        assert rejected(token) == "token header too large"

    @pytest.mark.parametrize(
        "token",
        [
            "not-a-jwt",
            "a.b",
            "a.b.c.d",
            "!!!.e30.c2ln",
            b64url(b"[1, 2]") + ".e30.c2ln",
            b64url(b"\xff\xfe") + ".e30.c2ln",
        ],
    )
    def test_malformed(self, token):
        assert rejected(token) == "malformed token"

    def test_garbage_payload(self, signing_key):
        header = b64url(json.dumps({"alg": "EdDSA", "kid": signing_key.kid}).encode())

        assert rejected(f"{header}.!!!.c2ln") == "malformed token"

    def test_subject_must_be_a_string(self, user, signing_key):
        assert rejected(signing_key.token_for(user, sub=12345)) == "invalid sub claim"

    @pytest.mark.parametrize(
        ("claim", "value"),
        [
            ("exp", "9999999999"),  # PyJWT's decode took numeric strings
            ("exp", True),
            ("nbf", [0]),
            ("iat", None),
            ("jti", 7),
        ],
    )
    def test_registered_claims_have_their_json_types(self, user, signing_key, claim, value):
        token = signing_key.token_for(user, **{claim: value})

        assert rejected(token) == f"invalid {claim} claim"

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            (b'{"exp": 1e999}', "invalid exp claim"),  # json.loads makes it inf
            (b"[" * 2900 + b"]" * 2900, "malformed token"),  # RecursionError in json
        ],
    )
    def test_signed_payloads_that_python_parses_oddly(self, user, signing_key, payload, message):
        claims = json.dumps(better_auth_claims(user)).encode()
        raw = payload if payload.startswith(b"[") else claims[:-1] + b", " + payload[1:]
        raw = raw.replace(b'"exp": %d, ' % better_auth_claims(user)["exp"], b"", 1)
        token = jwt.api_jws.encode(
            raw, signing_key.private_key, algorithm="EdDSA", headers={"kid": signing_key.kid}
        )

        assert rejected(token) == message

    @pytest.mark.parametrize("sub", ["user\x00id", "user\nid", "\ud800"])
    def test_subject_with_control_characters(self, user, signing_key, sub):
        assert rejected(signing_key.token_for(user, sub=sub)) == "invalid subject"

    @pytest.mark.parametrize("value", [float("inf"), float("nan")])
    def test_non_finite_numbers_are_not_json(self, user, signing_key, value):
        assert rejected(signing_key.token_for(user, exp=value)) == "malformed token"

    def test_critical_header_extensions_are_refused(self, user, signing_key):
        claims = better_auth_claims(user)
        token = signing_key.sign(claims, headers={"crit": ["exp"], "exp": 1})

        assert rejected(token) == "unsupported critical header"

    @pytest.mark.parametrize("junk", ["=", "!", " ", "+", "/"])
    def test_segments_are_strict_base64url(self, user, signing_key, junk):
        header, payload, signature = signing_key.token_for(user).split(".")

        assert rejected(f"{header}.{payload}.{signature}{junk}") == "malformed token"
        assert rejected(f"{header}{junk}.{payload}.{signature}") == "malformed token"


class TestKeyCache:
    def test_cached_keys_verify_without_queries(self, user, signing_key, django_assert_num_queries):
        token = signing_key.token_for(user)
        verify_jwt(token)

        with django_assert_num_queries(0):
            verify_jwt(token)

    def test_unknown_kids_reread_the_table_at_most_once_per_interval(
        self, user, signing_key, monkeypatch, django_assert_num_queries
    ):
        clock = FakeClock()
        monkeypatch.setattr(keys.public_keys, "clock", clock)
        verify_jwt(signing_key.token_for(user))  # loads the keys
        clock.advance(keys.KEY_REFRESH_INTERVAL_SECONDS)
        garbage = SigningKey("garbage", "EdDSA", signing_key.private_key).token_for(user)

        # One re-read: the jwks table's columns (they vary by Better Auth version), then its keys.
        with django_assert_num_queries(2):
            for _ in range(50):
                assert rejected(garbage) == "unknown key id"

    def test_a_rotated_in_key_is_found_at_once(self, user, signing_key, monkeypatch):
        clock = FakeClock()
        monkeypatch.setattr(keys.public_keys, "clock", clock)
        verify_jwt(signing_key.token_for(user))
        new_key = SigningKey("rotated", "EdDSA", generate_private_key("EdDSA"))
        store_public_key(new_key.kid, new_key.private_key, "EdDSA")  # cache not cleared

        assert verify_jwt(new_key.token_for(user)).user_id == user.id

    def test_after_an_unknown_kid_a_new_key_waits_at_most_the_refresh_interval(
        self, user, signing_key, monkeypatch
    ):
        clock = FakeClock()
        monkeypatch.setattr(keys.public_keys, "clock", clock)
        garbage = SigningKey("garbage", "EdDSA", signing_key.private_key).token_for(user)
        assert rejected(garbage) == "unknown key id"  # re-read the keys just now
        new_key = SigningKey("rotated", "EdDSA", generate_private_key("EdDSA"))
        store_public_key(new_key.kid, new_key.private_key, "EdDSA")
        assert rejected(new_key.token_for(user)) == "unknown key id"  # too soon to re-read

        clock.advance(keys.KEY_REFRESH_INTERVAL_SECONDS)

        assert verify_jwt(new_key.token_for(user)).user_id == user.id

    def test_a_deleted_key_stops_verifying_after_the_cache_ttl(
        self, user, signing_key, monkeypatch
    ):
        clock = FakeClock()
        monkeypatch.setattr(keys.public_keys, "clock", clock)
        token = signing_key.token_for(user)
        verify_jwt(token)
        Jwk.objects.filter(pk=signing_key.kid).delete()

        clock.advance(keys.KEY_CACHE_TTL_SECONDS)

        assert rejected(token) == "unknown key id"

    def test_keys_expired_beyond_the_grace_period_are_ignored(self, user):
        long_ago = timezone.now() - keys.KEY_GRACE_PERIOD - timedelta(days=1)
        key = create_signing_key("EdDSA", expires_at=long_ago)

        assert rejected(key.token_for(user)) == "unknown key id"

    def test_rotated_keys_still_verify_within_the_grace_period(self, user):
        key = create_signing_key("EdDSA", expires_at=timezone.now() - timedelta(days=1))

        assert verify_jwt(key.token_for(user)).user_id == user.id

    def test_unusable_rows_are_skipped_without_breaking_the_others(self, user, caplog):
        insert_jwks_row("not-json", "{oops")
        insert_jwks_row(
            "symmetric", json.dumps({"kty": "oct", "k": b64url(b"secret" * 8)}), alg="HS256"
        )
        insert_jwks_row("incomplete", json.dumps({"kty": "OKP", "crv": "Ed25519"}))  # no "x"
        es384 = ec.generate_private_key(ec.SECP384R1())
        store_public_key("es384", es384, "ES384")  # a valid key, but not Better Auth's
        key = create_signing_key("ES256")

        with caplog.at_level(logging.WARNING, logger="accounts.keys"):
            assert verify_jwt(key.token_for(user)).user_id == user.id

        for skipped in ("not-json", "symmetric", "incomplete", "es384"):
            assert f"{skipped}:" in caplog.text
        assert set(keys.load_public_keys() or {}) == {key.kid}

    def test_private_key_column_is_never_read(self, user, signing_key, django_assert_num_queries):
        with django_assert_num_queries(2) as context:  # the jwks columns, then its keys
            verify_jwt(signing_key.token_for(user))

        for query in context.captured_queries:
            assert "privateKey" not in query["sql"]


class TestJwksUrl:
    def test_auto_derives_better_auths_endpoint(self, settings):
        settings.BETTER_AUTH_URL = "https://app.example"
        settings.BETTER_AUTH_JWKS_URL = "auto"

        assert keys.jwks_url() == "https://app.example/api/auth/jwks"

    def test_keys_come_from_the_url_when_set(
        self, settings, better_auth_settings, vector_user, at_vector_time, monkeypatch
    ):
        settings.BETTER_AUTH_JWKS_URL = "https://auth.example/api/auth/jwks"
        fetched = []

        def fetch_data(client):
            fetched.append((client.uri, client.timeout))
            return better_auth_settings["jwks"]

        monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch_data)

        verified = verify_jwt(better_auth_settings["jwt"]["token"])

        assert verified.user_id == vector_user.id
        assert fetched == [(settings.BETTER_AUTH_JWKS_URL, keys.JWKS_FETCH_TIMEOUT_SECONDS)]

    def test_an_unreachable_url_keeps_the_cached_keys(
        self, settings, better_auth_settings, at_vector_time, monkeypatch, caplog
    ):
        settings.BETTER_AUTH_JWKS_URL = "https://auth.example/api/auth/jwks"
        clock = FakeClock()
        monkeypatch.setattr(keys.public_keys, "clock", clock)
        monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda c: better_auth_settings["jwks"])
        token = better_auth_settings["jwt"]["token"]
        verify_jwt(token)
        monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", _unreachable)
        clock.advance(keys.KEY_CACHE_TTL_SECONDS)

        with caplog.at_level(logging.WARNING, logger="accounts.keys"):
            assert verify_jwt(token).algorithm == "EdDSA"

        assert "could not fetch" in caplog.text


class TestSessionTokens:
    def test_raw_token_passes_through(self):
        assert sessions.session_token_from("abc123", require_signature=False) == "abc123"

    def test_unsigned_value_is_refused_where_a_signature_is_required(self):
        with pytest.raises(TokenError, match="session token is not signed"):
            sessions.session_token_from("abc123", require_signature=True)

    def test_bad_signature(self):
        forged = signed_session_token("abc123", secret="another-secret-of-sufficient-length")

        with pytest.raises(TokenError, match="invalid signature"):
            sessions.session_token_from(forged, require_signature=True)

    def test_signature_of_another_token(self):
        signature = signed_session_token("abc123").split(".", 1)[1]

        with pytest.raises(TokenError, match="invalid signature"):
            sessions.session_token_from(f"xyz789.{signature}", require_signature=True)

    @pytest.mark.parametrize("signature", ["", "not base64!", "c2ln", "=" * 44])
    def test_garbage_signature(self, signature):
        with pytest.raises(TokenError, match="invalid signature"):
            sessions.session_token_from(f"abc123.{signature}", require_signature=True)

    def test_unpadded_and_url_safe_signatures_are_accepted(self):
        signature = signed_session_token("abc123").split(".", 1)[1]
        variant = signature.rstrip("=").replace("+", "-").replace("/", "_")

        assert sessions.session_token_from(f"abc123.{variant}", require_signature=True) == "abc123"

    def test_oversized_value(self):
        with pytest.raises(TokenError, match="token too large"):
            sessions.session_token_from("a" * 2000, require_signature=False)

    def test_overlong_token(self):
        with pytest.raises(TokenError, match="malformed session token"):
            sessions.session_token_from("a" * 300, require_signature=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _secret() -> str:
    return django_settings.BETTER_AUTH_SECRET


def _forbid_decoding(monkeypatch) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("an oversized token reached a decoder")

    monkeypatch.setattr(jwts, "_b64decode", must_not_run)  # the header's
    monkeypatch.setattr(jwts, "_decode", must_not_run)  # PyJWT's


def _unreachable(client):
    raise jwt.PyJWKClientConnectionError("connection refused")
