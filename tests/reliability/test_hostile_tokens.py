"""Forged and malformed credentials against the running service (gunicorn, real HTTP).

Every case is refused with 401 AUTH_REQUIRED, the error shape and `WWW-Authenticate:
Bearer`; none is a 500 and none is slow. One case per failure of the authentication
issue, plus the hostile ones of the reliability issue.
"""

import base64
import datetime
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jwt
import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from tasks.models import Task
from tests.factories import SessionFactory, UserFactory
from tests.reliability.server import ROOT
from tests.tokens import (
    SigningKey,
    better_auth_claims,
    forge,
    generate_private_key,
    hs256_signed_with,
    public_jwk,
    signed_session_token,
)

pytestmark = pytest.mark.django_db(transaction=True)

MAX_SECONDS = 1.0  # per request; the real bound is a few ms


@dataclass
class World:
    """What the cases forge credentials from: a real key, users and sessions."""

    key: SigningKey
    user: User
    secret: str  # the server's BETTER_AUTH_SECRET

    def jwt(self, **claims) -> str:
        return self.key.token_for(self.user, **claims)

    def signed_payload(self, payload: bytes, **headers) -> str:
        """The real key signing arbitrary payload bytes (duplicate members and the like)."""
        return jwt.api_jws.encode(
            payload, self.key.private_key, algorithm="EdDSA",
            headers={"kid": self.key.kid, "typ": None, **headers},
        )  # fmt: skip

    def attacker_signed(self, **headers) -> str:
        """A well-formed token signed with the attacker's own key."""
        private = generate_private_key("EdDSA")
        return jwt.encode(
            better_auth_claims(self.user), private, algorithm="EdDSA",
            headers={"kid": self.key.kid, "typ": None, **headers},
        ) if "jwk" not in headers else jwt.encode(
            better_auth_claims(self.user), private, algorithm="EdDSA",
            headers={"kid": self.key.kid, "typ": None,
                     "jwk": public_jwk(private, "EdDSA") | {"kid": self.key.kid}},
        )  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"better-auth.session_token={value}"}


def swap_payload(token: str, claims: dict) -> str:
    header, _, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def deleted_user_token(w: World) -> dict[str, str]:
    doomed = UserFactory()
    token = w.key.token_for(doomed)
    with connection.cursor() as cursor:
        cursor.execute('DELETE FROM "user" WHERE id = %s', [doomed.pk])
    return bearer(token)


def signed_out_session(w: World) -> dict[str, str]:
    session = SessionFactory(user=w.user)
    value = signed_session_token(session.token, w.secret)
    session.delete()
    return bearer(value)


def expired_session(w: World) -> dict[str, str]:
    session = SessionFactory(user=w.user, expires_at=timezone.now() - datetime.timedelta(1))
    return bearer(signed_session_token(session.token, w.secret))


def bad_cookie_signature(w: World) -> dict[str, str]:
    session = SessionFactory(user=w.user)
    return cookie(signed_session_token(session.token, "not-the-secret"))


def with_kid(w: World, kid: str) -> dict[str, str]:
    """The real key's signature under another `kid`."""
    return bearer(w.key.sign(better_auth_claims(w.user), headers={"kid": kid}))


def now() -> int:
    return int(time.time())


# name -> headers (from a World); each must be a 401.
CASES: dict[str, Callable[[World], Mapping[str, str | bytes]]] = {
    # The authentication issue's failures.
    "no-header": lambda w: {},
    "wrong-scheme-basic": lambda w: {"Authorization": "Basic dXNlcjpwYXNz"},
    "wrong-scheme-token": lambda w: {"Authorization": f"Token {w.jwt()}"},
    "bearer-without-token": lambda w: {"Authorization": "Bearer"},
    "bearer-with-two-tokens": lambda w: {"Authorization": f"Bearer {w.jwt()} {w.jwt()}"},
    "bad-signature": lambda w: bearer(w.jwt()[:-6] + "AAAAAA"),
    "tampered-payload": lambda w: bearer(
        swap_payload(w.jwt(), better_auth_claims(UserFactory()))
    ),
    "alg-none": lambda w: bearer(
        forge({"alg": "none", "kid": w.key.kid}, better_auth_claims(w.user))
    ),
    "alg-None": lambda w: bearer(forge({"alg": "None"}, better_auth_claims(w.user))),
    "alg-none-with-signature": lambda w: bearer(
        forge({"alg": "none", "kid": w.key.kid}, better_auth_claims(w.user), b"sig")
    ),
    "hs256-signed-with-public-jwk": lambda w: bearer(hs256_signed_with(
        json.dumps(public_jwk(w.key.private_key, "EdDSA")).encode(),
        {"alg": "HS256", "kid": w.key.kid}, better_auth_claims(w.user),
    )),
    "hs256-signed-with-public-key-bytes": lambda w: bearer(hs256_signed_with(
        w.key.private_key.public_key().public_bytes_raw(),
        {"alg": "HS256"}, better_auth_claims(w.user),
    )),
    "hs256-with-wrong-secret": lambda w: bearer(
        jwt.encode({"sub": w.user.pk, "exp": now() + 60}, "a-guessed-secret-of-32-characters!!")
    ),
    "expired": lambda w: bearer(w.jwt(exp=now() - 3600, iat=now() - 4000)),
    "not-yet-valid": lambda w: bearer(w.jwt(nbf=now() + 3600)),
    "issued-in-the-future": lambda w: bearer(w.jwt(iat=now() + 3600, exp=now() + 4000)),
    "without-exp": lambda w: bearer(w.key.sign(
        {k: v for k, v in better_auth_claims(w.user).items() if k != "exp"}
    )),
    "wrong-issuer": lambda w: bearer(w.jwt(iss="https://evil.example")),
    "wrong-audience": lambda w: bearer(w.jwt(aud="https://evil.example")),
    "unknown-kid": lambda w: with_kid(w, "nope"),
    "unknown-user": lambda w: bearer(w.jwt(sub="no-such-user", id="no-such-user")),
    "deleted-user": deleted_user_token,
    "signed-out-session": signed_out_session,
    "expired-session": expired_session,
    "bad-session-signature": lambda w: bearer(
        signed_session_token(SessionFactory(user=w.user).token, "not-the-secret")
    ),
    "unknown-session-token": lambda w: bearer("A" * 32),
    "bad-cookie-signature": bad_cookie_signature,
    "unsigned-cookie": lambda w: cookie(SessionFactory(user=w.user).token),
    "oversized-token": lambda w: bearer("a" * 9000),
    # The reliability issue's additions.
    "huge-kid": lambda w: with_kid(w, "k" * 6000),
    "large-kid": lambda w: with_kid(w, "k" * 1000),
    "kid-just-too-long": lambda w: with_kid(w, "k" * 256),
    "kid-path-traversal": lambda w: with_kid(w, "../../../../etc/passwd"),
    "kid-file-url": lambda w: with_kid(w, "file:///dev/random"),
    "kid-sql": lambda w: with_kid(w, "x' OR '1'='1"),
    "kid-sql-drop": lambda w: with_kid(w, "x'; DROP TABLE jwks; --"),
    "kid-not-a-string": lambda w: bearer(forge({"alg": "EdDSA", "kid": [w.key.kid]}, {})),
    "kid-null-byte": lambda w: bearer(forge({"alg": "EdDSA", "kid": w.key.kid + "\x00"}, {})),
    "jku-header": lambda w: bearer(w.attacker_signed(jku="http://127.0.0.1:9/jwks.json")),
    "x5u-header": lambda w: bearer(w.attacker_signed(x5u="http://127.0.0.1:9/cert.pem")),
    "embedded-jwk-header": lambda w: bearer(w.attacker_signed(jwk=True)),
    "x5c-header": lambda w: bearer(w.attacker_signed(x5c=["MIIB"])),
    "duplicate-sub-claim": lambda w: bearer(w.signed_payload(
        json.dumps(better_auth_claims(w.user)).replace(
            '"sub":', f'"sub": "{UserFactory().pk}", "sub":', 1
        ).encode()
    )),
    "duplicate-alg-header": lambda w: bearer(
        b64(b'{"alg":"EdDSA","kid":"%s","alg":"none"}' % w.key.kid.encode())
        + "." + w.jwt().split(".", 1)[1]
    ),
    "sub-integer": lambda w: bearer(w.jwt(sub=123, id=123)),
    "sub-list": lambda w: bearer(w.jwt(sub=[w.user.pk], id=[w.user.pk])),
    "sub-object": lambda w: bearer(w.jwt(sub={"id": w.user.pk}, id=None)),
    "sub-null": lambda w: bearer(w.jwt(sub=None, id=None)),
    "sub-empty": lambda w: bearer(w.jwt(sub="", id="")),
    "sub-too-long": lambda w: bearer(w.jwt(sub="u" * 300, id="u" * 300)),
    "app-token-sub-integer": lambda w: bearer(jwt.encode({"sub": 1, "exp": now() + 60}, w.secret)),
    "very-long-header": lambda w: {"Authorization": "Bearer " + "x.y." + "z" * 12_000},
    "non-ascii-bytes": lambda w: {"Authorization": b"Bearer \xff\xfe\xfd.\x80\x81.\xc3\x28"},
    "utf8-token": lambda w: {"Authorization": "Bearer tökén".encode()},
    "empty-segments": lambda w: bearer(".."),
    "garbage-segments": lambda w: bearer("!!!.###.$$$"),
    "header-not-json": lambda w: bearer(b64(b"not json") + ".e30.sig"),
    "header-a-list": lambda w: bearer(b64(b"[]") + ".e30.sig"),
    "header-null": lambda w: bearer(b64(b"null") + ".e30.sig"),
    "header-nested": lambda w: bearer(b64(b'{"alg":' + b"[" * 300 + b"]" * 300 + b"}") + ".e30.x"),
    "four-segments": lambda w: bearer(w.jwt() + ".extra"),
    "garbage-cookie": lambda w: cookie("%%%ZZZ"),
    "huge-cookie": lambda w: cookie("a" * 6000 + "." + "b" * 44),
}  # fmt: skip

NO_CREDENTIALS = "Authentication credentials were not provided."
MALFORMED_HEADER = "invalid Authorization header: expected 'Bearer <token>'"

# Why each case is refused: the message proves it failed where it was meant to.
EXPECTED = {
    "no-header": NO_CREDENTIALS,
    "wrong-scheme-basic": NO_CREDENTIALS,
    "wrong-scheme-token": NO_CREDENTIALS,
    "bearer-without-token": MALFORMED_HEADER,
    "bearer-with-two-tokens": MALFORMED_HEADER,
    "bad-signature": "invalid signature",
    "tampered-payload": "invalid signature",
    "alg-none": "unsupported algorithm",
    "alg-None": "unsupported algorithm",
    "alg-none-with-signature": "unsupported algorithm",
    "hs256-signed-with-public-jwk": "invalid signature",
    "hs256-signed-with-public-key-bytes": "invalid signature",
    "hs256-with-wrong-secret": "invalid signature",
    "expired": "token expired",
    "not-yet-valid": "token not yet valid",
    "issued-in-the-future": "token not yet valid",
    "without-exp": "token has no exp claim",
    "wrong-issuer": "invalid issuer",
    "wrong-audience": "invalid audience",
    "unknown-kid": "unknown key id",
    "unknown-user": "user not found",
    "deleted-user": "user not found",
    "signed-out-session": "session not found",
    "expired-session": "session expired",
    "bad-session-signature": "invalid signature",
    "unknown-session-token": "session not found",
    "bad-cookie-signature": "invalid signature",
    "unsigned-cookie": "session token is not signed",
    "oversized-token": "token too large",
    "huge-kid": "token too large",
    "large-kid": "token header too large",
    "kid-just-too-long": "unknown key id",
    "kid-path-traversal": "unknown key id",
    "kid-file-url": "unknown key id",
    "kid-sql": "unknown key id",
    "kid-sql-drop": "unknown key id",
    "kid-not-a-string": "unknown key id",
    "kid-null-byte": "unknown key id",
    # Signed by the attacker's key under the real kid: key-fetching headers are never followed.
    "jku-header": "invalid signature",
    "x5u-header": "invalid signature",
    "embedded-jwk-header": "invalid signature",
    "x5c-header": "invalid signature",
    "duplicate-sub-claim": "malformed token",
    "duplicate-alg-header": "malformed token",
    "sub-integer": "invalid sub claim",
    "sub-list": "invalid sub claim",
    "sub-object": "invalid sub claim",
    "sub-null": "invalid sub claim",
    "sub-empty": "token has no subject",
    "sub-too-long": "invalid subject",
    "app-token-sub-integer": "invalid sub claim",
    "very-long-header": "token too large",
    "non-ascii-bytes": MALFORMED_HEADER,
    "utf8-token": MALFORMED_HEADER,
    "empty-segments": "malformed token",
    "garbage-segments": "malformed token",
    "header-not-json": "malformed token",
    "header-a-list": "malformed token",
    "header-null": "malformed token",
    "header-nested": "unsupported algorithm",
    "four-segments": "invalid signature",  # not a JWT: checked as a signed session token
    "garbage-cookie": "session token is not signed",
    "huge-cookie": "token too large",
}


@pytest.fixture
def world(server, server_key, user) -> World:
    return World(key=server_key, user=user, secret=server.better_auth_secret)


def assert_unauthorized(reply, case: str, detail: str | None = None) -> None:
    assert reply.status == 401, (case, reply.status, reply.body[:300])
    assert reply.headers["Content-Type"] == "application/json", case
    assert reply.headers["WWW-Authenticate"].startswith("Bearer"), case
    body = reply.json()
    assert body["error"]["code"] == "AUTH_REQUIRED", case
    assert body["detail"] == body["error"]["message"], case
    assert detail is None or body["detail"] == detail, (case, body["detail"])
    assert b"Traceback" not in reply.body, case
    assert reply.seconds < MAX_SECONDS, (case, reply.seconds)


def test_a_valid_token_works_on_this_server(server, world):
    reply = server.request("GET", "/api/tasks", headers=bearer(world.jwt()))
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("case", list(CASES))
def test_forged_credentials_are_401(server, world, case):
    headers = CASES[case](world)
    for method, path in [("GET", "/api/tasks"), ("POST", f"/api/{world.user.pk}/tasks")]:
        reply = server.request(
            method, path, headers={"Content-Type": "application/json", **headers},
            body='{"title": "forged"}' if method == "POST" else None,
        )  # fmt: skip
        assert_unauthorized(reply, case, EXPECTED[case])
    assert not Task.objects.exists()


def test_every_case_says_why_it_fails():
    assert set(EXPECTED) == set(CASES)


def test_the_readme_counts_the_cases():
    assert f"{len(CASES)} forged credentials" in (ROOT / "README.md").read_text()


def test_header_lines_beyond_16_kib_are_refused_by_gunicorn(server):
    reply = server.request("GET", "/api/tasks", headers=bearer("a" * 17_000))
    assert reply.status == 431  # before any application code; never a 500


@pytest.mark.parametrize("param", ["token", "access_token", "jwt", "auth", "authorization"])
def test_a_token_in_the_query_string_does_not_authenticate(server, world, param):
    token = world.jwt()
    value = f"Bearer%20{token}" if param == "authorization" else token
    reply = server.request("GET", f"/api/tasks?{param}={value}")
    assert_unauthorized(reply, param, NO_CREDENTIALS)


def test_a_storm_of_unknown_kids_stays_fast(server, world):
    """Unknown kids re-read the keys at most every few seconds, whatever their number."""
    started = time.monotonic()
    for n in range(100):
        token = world.key.sign(better_auth_claims(world.user), headers={"kid": f"kid-{n}"})
        reply = server.request("GET", "/api/tasks", headers=bearer(token))
        assert_unauthorized(reply, f"kid-{n}", "unknown key id")
    assert time.monotonic() - started < 10
