"""Every credential a real Better Auth server hands out works here, for every supported
version and configuration (tests/better_auth/harness.py VARIANTS), and nothing else does.

Better Auth creates its own tables with its own migration, signs a user up over its
HTTP API, and this service (gunicorn, production settings, migrated afterwards) must
accept that user's JWT, raw and signed session tokens and cookie, refuse the session
once signed out, and refuse forged tokens, without any 5xx.
"""

import base64
import json
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.better_auth.conftest import SignedUp, sign_up
from tests.better_auth.harness import Stack

TASKS = "/api/tasks"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_me(stack: Stack, headers: dict[str, str]) -> tuple[int, dict]:
    reply = stack.api.request("GET", "/api/me", headers=headers)
    return reply.status, reply.json()


def assert_is(stack: Stack, headers: dict[str, str], who: SignedUp) -> None:
    status, body = get_me(stack, headers)
    assert status == 200, body
    assert body["user"]["id"] == str(who.user["id"])  # serial ids: a JSON number there
    assert body["user"]["email"] == who.user["email"]


def test_migrate_reports_no_problem(stack):
    assert "System check identified" not in stack.migrate_output, stack.migrate_output


# The optional jwks columns each version's own migration creates (FACTS: 1.4.9 has no alg).
JWKS_OPTIONAL_COLUMNS = {
    "1.3.34": [],
    "1.4.9": ["expiresAt"],
    "1.7.25": ["expiresAt", "alg", "crv"],
}


def test_the_version_made_its_own_tables(stack):
    variant = stack.variant
    assert stack.auth.version == variant.version
    users = variant.schema_setting.get("user", {}).get("modelName", "user")
    with stack.connect() as conn:
        id_type = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = 'id'",
            [f'"{users}"'],
        ).fetchone()[0]
        task_user_id = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'task'::regclass AND attname = 'user_id'"
        ).fetchone()[0]
    assert id_type == variant.id_type
    assert task_user_id == id_type  # the migration matched "user".id's type
    if variant.jwt is not None and not variant.schema_setting:
        with stack.connect() as conn:
            columns = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'jwks'::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            ).fetchall()
        assert [name for (name,) in columns] == [
            "id", "publicKey", "privateKey", "createdAt", *JWKS_OPTIONAL_COLUMNS[variant.version]
        ]  # fmt: skip


def test_jwt_from_the_token_endpoint(stack, alice):
    if stack.variant.jwt is None:
        assert alice.jwt is None  # no jwt plugin: no /token endpoint
        return
    header = jwt.get_unverified_header(alice.jwt)
    assert header["alg"] == stack.variant.algorithm

    assert_is(stack, bearer(alice.jwt), alice)


def test_raw_session_token(stack, alice):
    assert_is(stack, bearer(alice.session_token), alice)


def test_signed_session_token_of_the_set_auth_token_header(stack, alice):
    assert_is(stack, bearer(alice.signed_token), alice)


def test_session_cookie(stack, alice):
    assert_is(stack, {"Cookie": alice.cookie}, alice)


def test_tasks_belong_to_their_user_only(stack, alice):
    bob = sign_up(stack.auth, "Bob")
    created = stack.api.request(
        "POST",
        TASKS,
        headers={**bearer(alice.session_token), "Content-Type": "application/json"},
        body=json.dumps({"title": f"Alice's task on {stack.variant.name}"}),
    )
    assert created.status == 201, created.body
    task = created.json()["task"]
    assert task["user_id"] == str(alice.user["id"])

    mine = stack.api.request(
        "GET", f"/api/{alice.user['id']}/tasks", headers=bearer(alice.jwt or alice.session_token)
    )
    theirs = stack.api.request("GET", TASKS, headers=bearer(bob.session_token))
    peek = stack.api.request("GET", f"{TASKS}/{task['id']}", headers=bearer(bob.session_token))
    other_path = stack.api.request(
        "GET", f"/api/{alice.user['id']}/tasks", headers=bearer(bob.session_token)
    )

    assert mine.status == 200, mine.body
    assert task["id"] in [row["id"] for row in mine.json()["tasks"]]
    assert theirs.json()["tasks"] == []
    assert (peek.status, other_path.status) == (404, 403)


def test_signing_out_revokes_the_session(stack):
    carol = sign_up(stack.auth, "Carol")
    assert_is(stack, bearer(carol.session_token), carol)

    status, _, body = stack.auth.call("POST", "/sign-out", {}, headers={"Cookie": carol.cookie})
    assert status == 200, body

    revoked = (bearer(carol.session_token), bearer(carol.signed_token), {"Cookie": carol.cookie})
    for headers in revoked:
        status, body = get_me(stack, headers)
        assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED"), headers


def test_forged_jwts_are_refused(stack, alice):
    kid = _kid(alice.jwt) if alice.jwt else "no-such-key"
    claims = {
        "sub": alice.user["id"],
        "id": alice.user["id"],
        "iss": "http://localhost:3000",
        "aud": "http://localhost:3000",
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
    }
    own_key = ed25519.Ed25519PrivateKey.generate()
    forged = [
        jwt.encode(claims, own_key, algorithm="EdDSA", headers={"kid": kid}),  # not its key
        _forge({"alg": "none", "kid": kid}, claims),
        jwt.encode(claims, "guessed-secret-" * 3, algorithm="HS256"),
    ]
    if alice.jwt:
        header, _, signature = alice.jwt.split(".")
        tampered = _b64({**jwt.decode(alice.jwt, options={"verify_signature": False}), "sub": "x"})
        forged.append(f"{header}.{tampered}.{signature}")  # Better Auth's signature, edited claims

    for token in forged:
        status, body = get_me(stack, bearer(token))
        assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED"), (token, body)


def test_user_ids_of_another_type_are_refused_cleanly(stack, alice):
    # An app-signed HS256 token whose subject cannot be an id of this column's type: a 401.
    # It carries what an app token must (iss, aud, a lifetime within the maximum).
    origin = stack.api.env["BETTER_AUTH_URL"]
    claims = {"sub": "not-an-id-of-this-type", "iss": origin, "aud": origin}
    token = jwt.encode(
        {**claims, "exp": int(time.time()) + 3600},
        stack.api.env["BETTER_AUTH_SECRET"],
        algorithm="HS256",
    )

    status, body = get_me(stack, bearer(token))

    assert (status, body["detail"]) == (401, "user not found")


def test_deleting_the_user_deletes_their_tasks(stack):
    dave = sign_up(stack.auth, "Dave")
    created = stack.api.request(
        "POST",
        TASKS,
        headers={**bearer(dave.session_token), "Content-Type": "application/json"},
        body=json.dumps({"title": "to be deleted with Dave"}),
    )
    assert created.status == 201, created.body
    users = stack.variant.schema_setting.get("user", {}).get("modelName", "user")

    with stack.connect() as conn:
        conn.execute(f'DELETE FROM "{users}" WHERE id = %s', [dave.user["id"]])  # as Better Auth
        left = conn.execute("SELECT count(*) FROM task WHERE user_id = %s", [dave.user["id"]])
        assert left.fetchone()[0] == 0


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _forge(header: dict, claims: dict) -> str:
    return f"{_b64(header)}.{_b64(claims)}."
