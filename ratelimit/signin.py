"""The Django admin's sign-in, throttled per client and per account; failures are logged.

A password can be guessed, so unlike API credentials (ratelimit.middleware) a client
over its limit is refused even with the right password. The per-account limit stops a
guesser spread over many addresses without locking the account's owner out: it only
refuses clients that have themselves failed a sign-in in the window.
"""

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.signals import user_login_failed
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.views.decorators.cache import never_cache

from ratelimit.limits import client_ip, hit, parse_rate, peek

logger = logging.getLogger(__name__)

USERNAME_FIELD_MAX = 150


def _keys(request: HttpRequest) -> tuple[str, str]:
    username = str(request.POST.get("username", ""))[:USERNAME_FIELD_MAX].strip().lower()
    account = hashlib.sha256(username.encode()).hexdigest()[:32]  # any length, no raw input
    return f"admin-login-client:{client_ip(request)}", f"admin-login-account:{account}"


def signin_retry_after(request: HttpRequest) -> int | None:
    """Seconds until this sign-in may be tried, or None when it may be tried now."""
    client_rate = parse_rate(settings.RATE_LIMIT_ADMIN_LOGIN_CLIENT)
    account_rate = parse_rate(settings.RATE_LIMIT_ADMIN_LOGIN_ACCOUNT)
    client_key, account_key = _keys(request)
    client_failures, client_wait = peek(client_key, client_rate) if client_rate else (0, 0)
    if client_rate and client_failures >= client_rate.count:
        return client_wait
    if account_rate and client_failures:
        account_failures, account_wait = peek(account_key, account_rate)
        if account_failures >= account_rate.count:
            return account_wait
    return None


def count_signin_failure(request: HttpRequest) -> None:
    client_key, account_key = _keys(request)
    for key, setting in (
        (client_key, settings.RATE_LIMIT_ADMIN_LOGIN_CLIENT),
        (account_key, settings.RATE_LIMIT_ADMIN_LOGIN_ACCOUNT),
    ):
        if rate := parse_rate(setting):
            hit(key, rate)


def too_many_attempts(retry_after: int) -> HttpResponse:
    minutes = max(1, round(retry_after / 60))
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Too many sign-in attempts"
        "</title><h1>Too many failed sign-in attempts</h1>"
        f"<p>Try again in about {escape(minutes)} minute{'s' if minutes != 1 else ''}.</p>"
    )
    response = HttpResponse(page, status=429)
    response["Retry-After"] = str(retry_after)
    response.html_error = True  # type: ignore[attr-defined]  # a page for people; config.middleware.JSONErrorsMiddleware
    return response


@never_cache
def admin_login(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """admin.site.login behind the throttle: a POST re-showing the form failed to sign in."""
    if request.method != "POST":
        return admin.site.login(request, **kwargs)
    try:
        retry_after = signin_retry_after(request)
    except DatabaseError:
        logger.warning("admin sign-in throttle unavailable: the database is down")
        retry_after = None
    if retry_after is not None:
        logger.warning("admin sign-in refused: too many failures from client %s",
                       client_ip(request))  # fmt: skip
        return too_many_attempts(retry_after)
    response = admin.site.login(request, **kwargs)
    if response.status_code == 200 and not request.user.is_authenticated:
        count_signin_failure(request)
    return response


@receiver(user_login_failed)
def log_failed_login(sender: Any, credentials: dict[str, Any], request: Any = None,
                     **kwargs: Any) -> None:  # fmt: skip
    """Every failed sign-in (Django cleanses the password out of `credentials`)."""
    username = str(credentials.get("username", ""))[:USERNAME_FIELD_MAX]
    client = client_ip(request) if isinstance(request, HttpRequest) else "-"
    logger.warning("sign-in failed for username %r from client %s", username, client,
                   extra={"username": username, "client": client})  # fmt: skip
