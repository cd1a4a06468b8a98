import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.better_auth.harness import VARIANTS, BetterAuth, Stack, Stacks


@pytest.fixture(scope="module")
def stacks(request, tmp_path_factory) -> Iterator[Stacks]:
    """The stacks of every variant this run's selected tests use, all started at once, and
    stopped once the module's tests are done (not left running through the rest of the suite)."""
    selected = {
        item.callspec.params["stack"].name
        for item in request.session.items
        if hasattr(item, "callspec") and "stack" in item.callspec.params
    }
    variants = [variant for variant in VARIANTS if variant.name in selected]
    started = Stacks(variants, tmp_path_factory.mktemp("better-auth"))
    yield started
    started.close()


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: variant.name)
def stack(request, stacks) -> Stack:
    """One Better Auth deployment and this API on its database (started once per run)."""
    return stacks.get(request.param)


@dataclass
class SignedUp:
    """A user who signed up over Better Auth's HTTP API, and the credentials it handed out."""

    user: dict[str, Any]
    session_token: str  # raw, as in session.token
    signed_token: str  # the set-auth-token header: token.signature
    cookie: str  # better-auth.session_token=...
    jwt: str | None  # from /api/auth/token (None without the jwt plugin)


def sign_up(auth: BetterAuth, name: str = "Alice") -> SignedUp:
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
    status, headers, body = auth.call(
        "POST", "/sign-up/email", {"email": email, "password": "correct-horse-9", "name": name}
    )
    assert status == 200, body
    cookie = next(
        part.split(";")[0]
        for part in headers["set-cookie"].splitlines()
        if part.startswith("better-auth.session_token=")
    )
    token_status, _, token_body = auth.call(
        "GET", "/token", headers={"Authorization": f"Bearer {body['token']}"}
    )
    return SignedUp(
        user=body["user"],
        session_token=body["token"],
        signed_token=headers["set-auth-token"],
        cookie=cookie,
        jwt=token_body["token"] if token_status == 200 else None,
    )


@pytest.fixture(scope="module")
def alice(stack) -> SignedUp:
    return sign_up(stack.auth, "Alice")
