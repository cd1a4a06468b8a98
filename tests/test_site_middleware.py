"""Django's session, CSRF, auth and messages middleware serve the admin, not the API."""

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from config import middleware

SITE_ONLY = [
    middleware.SessionMiddleware,
    middleware.CsrfViewMiddleware,
    middleware.AuthenticationMiddleware,
    middleware.MessageMiddleware,
]


def run_chain(path: str) -> tuple[HttpRequest, HttpResponse]:
    """The four, in settings' order, around a view that leaves the request as it found it."""

    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    # Each middleware takes and gives Django's (sync or async) handler type.
    handler: Callable[[HttpRequest], Any] = view
    for cls in reversed(SITE_ONLY):
        handler = cls(handler)
    request = RequestFactory().get(path, HTTP_COOKIE="sessionid=abc; csrftoken=" + "x" * 32)
    return request, handler(request)


def test_they_stand_where_djangos_own_stood():
    names = [f"{cls.__module__}.{cls.__name__}" for cls in SITE_ONLY]
    assert [name for name in settings.MIDDLEWARE if name in names] == names


@pytest.mark.parametrize("path", ["/api/tasks", "/api/abc/tasks/1/complete", "/mcp", "/health"])
def test_api_paths_skip_them(path):
    request, response = run_chain(path)

    for attribute in ("session", "user", "auser", "_messages"):
        assert not hasattr(request, attribute)
    assert "CSRF_COOKIE" not in request.META
    assert not response.cookies
    assert "Vary" not in response


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/docs"])
def test_every_other_path_runs_them(path):
    request, _ = run_chain(path)

    for attribute in ("session", "user", "auser", "_messages"):
        assert hasattr(request, attribute)
    assert request.META["CSRF_COOKIE"] == "x" * 32


@pytest.mark.django_db
def test_a_django_session_signs_nobody_in_to_the_api(admin_client):
    response = admin_client.get("/api/me")  # the admin's session cookie, no Bearer token

    assert response.status_code == 401
    assert "Vary" not in response or "Cookie" not in response["Vary"]
    assert not response.cookies
