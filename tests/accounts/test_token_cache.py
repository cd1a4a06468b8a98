"""The verified-token cache: a repeat token skips the signature check, never the rules."""

import time
from datetime import timedelta

import pytest
import time_machine

from accounts import jwts, keys
from accounts.credentials import TokenError
from accounts.jwts import VerifiedToken, verify_jwt
from accounts.models import Jwk
from accounts.token_cache import VerifiedTokenCache
from tests.factories import UserFactory
from tests.tokens import app_token, create_signing_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing_key():
    key = create_signing_key("EdDSA")
    yield key
    jwts.clear_key_cache()


def test_repeat_token_is_served_without_a_signature_check(signing_key, monkeypatch):
    token = signing_key.token_for(UserFactory())
    first = verify_jwt(token)

    def no_decoding(*args, **kwargs):
        raise AssertionError("verified again")

    monkeypatch.setattr(jwts, "_decode", no_decoding)

    assert verify_jwt(token) is first


def test_cached_token_is_rejected_once_expired(signing_key):
    token = signing_key.token_for(UserFactory(), lifetime=60)
    verify_jwt(token)

    later = timedelta(seconds=61 + jwts.LEEWAY_SECONDS)
    with time_machine.travel(later, tick=False), pytest.raises(TokenError, match="token expired"):
        verify_jwt(token)


def test_cached_token_needs_its_key_to_still_be_served(signing_key):
    token = signing_key.token_for(UserFactory())
    verify_jwt(token)

    Jwk.objects.filter(id=signing_key.kid).delete()
    keys.public_keys.clear()  # what the key cache's own expiry does after a while

    with pytest.raises(TokenError, match="unknown key id"):
        verify_jwt(token)


def test_cached_app_token_is_rejected_after_the_secret_changes(settings):
    settings.BETTER_AUTH_SECRET = "first-secret-that-is-long-enough-for-hs256"
    token = app_token(UserFactory().id)
    verify_jwt(token)

    settings.BETTER_AUTH_SECRET = "second-secret-that-is-long-enough-for-hs256"

    with pytest.raises(TokenError, match="invalid signature"):
        verify_jwt(token)


def test_cache_keeps_at_most_its_size(signing_key):
    cache: VerifiedTokenCache[VerifiedToken] = VerifiedTokenCache(size=3)
    user = UserFactory()
    issued = [signing_key.token_for(user, jti=str(n)) for n in range(5)]
    key = (keys.public_keys.get(signing_key.kid) or {})["EdDSA"]
    for token in issued:
        cache.add(token, verify_jwt(token), key=key, kid=signing_key.kid, until=time.time() + 60)

    assert [cache.get(token) is not None for token in issued] == [False, False, True, True, True]
