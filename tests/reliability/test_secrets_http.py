"""Secrets and token bounds, and the proxy setting, as a production deployment sees them."""

import os
import secrets
import subprocess
import sys
import time

import jwt
import pytest

from tests.reliability.server import BETTER_AUTH_URL, ROOT, Server

pytestmark = pytest.mark.django_db(transaction=True)


def django_process(code: str, **env: str) -> subprocess.CompletedProcess:
    """`code` run after django.setup() with production settings plus `env`."""
    base = {
        **os.environ, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "BETTER_AUTH_SECRET": secrets.token_urlsafe(32),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }  # fmt: skip
    script = f"import django; django.setup(); from django.conf import settings; {code}"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("secret", "starts"), [("abc", False), ("x" * 31, False), ("x" * 32, True)]
)
def test_production_refuses_a_better_auth_secret_under_32_characters(secret, starts):
    process = django_process("print('started')", BETTER_AUTH_SECRET=secret)
    assert (process.returncode == 0) is starts, process.stderr[-500:]
    if not starts:
        assert "BETTER_AUTH_SECRET is shorter than 32 characters" in process.stderr


@pytest.mark.parametrize(("proxies", "trusted"), [("0", False), ("", False), ("1", True)])
def test_x_forwarded_proto_is_trusted_only_behind_a_proxy(proxies, trusted):
    process = django_process(
        "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))", RATE_LIMIT_NUM_PROXIES=proxies
    )
    assert process.returncode == 0, process.stderr[-500:]
    assert ("HTTP_X_FORWARDED_PROTO" in process.stdout) is trusted


class TestAppTokens:
    """HS256 tokens signed with BETTER_AUTH_SECRET, against a server with BETTER_AUTH_URL."""

    def token(self, server: Server, user, **claims) -> str:
        now = int(time.time())
        payload = {"sub": user.id, "iat": now, "exp": now + 3600,
                   "iss": BETTER_AUTH_URL, "aud": BETTER_AUTH_URL, **claims}  # fmt: skip
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, server.better_auth_secret, algorithm="HS256")

    def get(self, server: Server, token: str):
        return server.request("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})

    def test_a_token_naming_this_deployment_is_accepted(self, server, user):
        assert self.get(server, self.token(server, user)).status == 200

    @pytest.mark.parametrize(
        ("claims", "message"),
        [
            (lambda now: {"iss": None}, "invalid issuer"),
            (lambda now: {"aud": None}, "invalid audience"),
            (lambda now: {"iss": None, "aud": None}, "invalid issuer"),
            (lambda now: {"exp": 1e300}, "token lifetime too long"),
            (lambda now: {"exp": now + 8 * 86400, "iat": None}, "token lifetime too long"),
            (lambda now: {"iat": now - 8 * 86400 + 60, "exp": now + 60},
             "token lifetime too long"),
        ],
        ids=["no iss", "no aud", "neither", "exp=1e300", "8 days ahead", "8 days long"],
    )  # fmt: skip
    def test_unbounded_or_unaddressed_tokens_are_refused(self, server, user, claims, message):
        reply = self.get(server, self.token(server, user, **claims(int(time.time()))))
        assert reply.status == 401, reply.body
        assert reply.json()["error"]["message"] == message


def test_check_deploy_warns_once_x_forwarded_for_arrived_without_a_trusted_proxy(server):
    def check() -> str:
        process = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=server.env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return process.stdout + process.stderr

    assert "ratelimit.W001" not in check()
    reply = server.request("GET", "/health", headers={"X-Forwarded-For": "198.51.100.7"})
    assert reply.status == 200
    reply = server.request("GET", "/api/me", headers={"X-Forwarded-For": "198.51.100.7",
                                                      "Authorization": "Bearer bad"})  # fmt: skip
    assert reply.status == 401
    time.sleep(0.3)
    output = check()
    assert "ratelimit.W001" in output
    assert "RATE_LIMIT_NUM_PROXIES" in output
    assert "X-Forwarded-For arrived but RATE_LIMIT_NUM_PROXIES=0" in server.log_tail(200)
