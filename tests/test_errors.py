"""The JSON error shape on Django's own error paths: handler400, handler403, handler500, and
the ObjectDoesNotExist and DatabaseError branches of the REST exception handler. A 500
never shows a stack trace."""

import logging

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, SuspiciousOperation
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as api_urls

__all__ = ["handler400", "handler403", "handler404", "handler500"]  # this urlconf's handlers


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internals")


def refuse(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("secret reason")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("secret detail")


class RestCrash(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internals")


class RestMissingRow(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise ObjectDoesNotExist("secret row")


class RestDatabaseError(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            # A DataError; a missing table or column is a 503 (a schema that does not match).
            cursor.execute("SELECT 1 / (random() * 0)::int AS secret_column")
        return Response({})


urlpatterns = [
    *api_urls,
    path("crash", crash),
    path("refuse", refuse),
    path("suspicious", suspicious),
    path("rest-crash", RestCrash.as_view()),
    path("rest-missing-row", RestMissingRow.as_view()),
    path("rest-database-error", RestDatabaseError.as_view()),
]


def assert_error(response, status: int, code: str, message: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": message,
        "error": {"code": code, "message": message, "details": None},
    }
    assert b"secret" not in response.content


@pytest.fixture
def client(client):
    client.raise_request_exception = False  # answer as a server does
    return client


@pytest.mark.urls("tests.test_errors")
class TestHandlers:
    @pytest.mark.parametrize("url", ["/crash", "/rest-crash"])
    def test_an_unhandled_exception_is_a_json_500(self, client, url, caplog):
        assert_error(client.get(url), 500, "INTERNAL_ERROR", "Internal server error.")
        assert "RuntimeError: secret internals" in caplog.text  # logged, never sent

    def test_a_missing_row_in_a_rest_view_is_a_json_404(self, client):
        # One mapping (config.errors) for every view: no `except DoesNotExist: raise NotFound`.
        assert_error(client.get("/rest-missing-row"), 404, "NOT_FOUND", "Not found.")

    @pytest.mark.django_db
    def test_a_database_error_in_a_rest_view_is_a_logged_json_500(self, client, caplog):
        caplog.set_level(logging.ERROR, logger="config.errors")
        response = client.get("/rest-database-error")
        assert_error(response, 500, "INTERNAL_ERROR", "Internal server error.")
        [record] = [r for r in caplog.records if r.name == "config.errors"]
        assert record.getMessage() == "database error"
        assert "division by zero" in caplog.text

    def test_permission_denied_is_a_json_403(self, client):
        assert_error(client.get("/refuse"), 403, "FORBIDDEN", "Forbidden.")

    def test_a_suspicious_request_is_a_json_400(self, client):
        assert_error(client.get("/suspicious"), 400, "VALIDATION_ERROR", "Bad request.")


def test_a_host_not_allowed_is_a_json_400(client):
    response = client.get("/health", headers={"Host": "evil.example.com"})
    assert_error(response, 400, "VALIDATION_ERROR", "Bad request.")


@pytest.mark.django_db
def test_staff_without_the_permission_get_a_json_403_from_the_admin(client, django_user_model):
    staff = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(staff)
    assert_error(client.get("/admin/tasks/task/add/"), 403, "FORBIDDEN", "Forbidden.")
