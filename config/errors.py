"""One JSON error shape for every failure the service returns.

    {"detail": "<message>", "error": {"code": "<CODE>", "message": "<message>", "details": ...}}

`error` is what the Next.js frontend reads; `detail` keeps FastAPI-style and DRF
clients working.
"""

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.postgresql.base import failure_cause

logger = logging.getLogger(__name__)

CODES = {
    400: "VALIDATION_ERROR",
    401: "AUTH_REQUIRED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    410: "RESYNC_REQUIRED",
    412: "PRECONDITION_FAILED",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "service_unavailable"


class SchemaMismatch(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = (
        "The database's tables do not match this service's settings (Better Auth's "
        "tables or this service's migrations); the server log says what is missing."
    )
    default_code = "service_unavailable"


# SQLSTATEs of a schema that differs from what the code expects: an undefined table,
# column or function, or a type mismatch. A deploy problem, not a bug of the request.
SCHEMA_SQLSTATES = frozenset({"42P01", "42703", "42883", "42804"})
_reported_schema_errors: set[str] = set()


def is_schema_error(error: DatabaseError) -> bool:
    cause = error.__cause__
    # Or a column type changed under a prepared statement (config.postgresql.PreparedCursor).
    return getattr(cause, "sqlstate", None) in SCHEMA_SQLSTATES or getattr(
        cause, "stale_plan", False
    )


def schema_mismatch(error: DatabaseError) -> SchemaMismatch:
    """A 503 for the client; the real cause logged once per process (`manage.py check`
    reports every mismatch at once)."""
    cause = (str(error).strip().splitlines() or [error.__class__.__name__])[0]
    if cause not in _reported_schema_errors:
        _reported_schema_errors.add(cause)
        logger.error("database schema mismatch: %s; run `manage.py check` for a report", cause)
    return SchemaMismatch()


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with an earlier one."
    default_code = "conflict"


class ResyncRequired(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_detail = (
        "This changes cursor is older than the tombstones kept; "
        "sync again from scratch (leave out `since`)."
    )
    default_code = "resync_required"


class PreconditionFailed(exceptions.APIException):
    """A stale If-Match: `current` (the task as it is now) goes in the error's details."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The task changed since that version (If-Match); see the current task."
    default_code = "precondition_failed"

    def __init__(self, current: Any, detail: str | None = None) -> None:
        super().__init__(detail)
        self.details = {"current": current}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


class QuotaExceeded(exceptions.APIException):
    """A per-user quota is used up (409 QUOTA_EXCEEDED): deleting frees it, waiting does not."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Quota exceeded."
    default_code = "quota_exceeded"
    error_code = "QUOTA_EXCEEDED"


def error_code(status_code: int) -> str:
    """Map an HTTP status to the API's error code (other 4xx are input errors)."""
    if status_code in CODES:
        return CODES[status_code]
    return "VALIDATION_ERROR" if status_code < 500 else "INTERNAL_ERROR"


def error_body(
    status_code: int, message: str, details: Any = None, code: str | None = None
) -> dict[str, Any]:
    return {
        "detail": message,
        "error": {
            "code": code or error_code(status_code),
            "message": message,
            "details": details,
        },
    }


def _first_message(detail: Any, prefix: str = "") -> str:
    """The first error of a (nested) DRF error structure, as `field: message`."""
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        label = "" if key in ("non_field_errors", "detail") else f"{key}"
        return _first_message(value, f"{prefix}.{label}" if prefix and label else prefix or label)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], prefix)
    return f"{prefix}: {detail}" if prefix else str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, reshaped: a missing row (any ObjectDoesNotExist) is a 404, database
    outages and schema mismatches are 503, not 500."""
    if isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", failure_cause(exc))
        exc = ServiceUnavailable()
    elif isinstance(exc, DatabaseError) and is_schema_error(exc):
        exc = schema_mismatch(exc)
    elif isinstance(exc, DatabaseError):
        logger.exception("database error")
        return Response(error_body(500, "Internal server error."), status=500)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's handler500 answers with the JSON shape
    details: Any
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body(response.status_code, _first_message(details), details)
    else:  # `details`: the current task, the failed operation, when to retry
        code = getattr(exc, "error_code", None)
        details = getattr(exc, "details", None)
        response.data = error_body(
            response.status_code, _first_message(response.data), details, code
        )
    return response


def api_error(error: Exception) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body the REST API answers `error` with (a missing row: 404)."""
    response = exception_handler(error, {})
    if response is None:
        logger.error("request failed", exc_info=error)
        return 500, error_body(500, "Internal server error.")
    return response.status_code, response.data


@csrf_exempt  # also the catch-all route of /api/: an unknown path is a 404 for any method
def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(404, "Not found."), status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(400, "Bad request."), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(403, "Forbidden."), status=403)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body(500, "Internal server error."), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: a cookie-authenticated write from an untrusted origin (or the
    admin's forms without their token)."""
    return JsonResponse(error_body(403, f"CSRF verification failed: {reason}"), status=403)
