"""Liveness and readiness probes: public, unauthenticated, no secrets in the body.

Plain Django views rather than DRF ones: no authentication or content negotiation
runs, and they stay out of the API's OpenAPI schema.
"""

import logging
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from config.postgresql.base import database_deadline, failure_cause

logger = logging.getLogger(__name__)

READY_QUERY = "SELECT 1"


ALLOW = "GET, HEAD, OPTIONS"


def probe(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """GET and HEAD reach the probe, OPTIONS says so, anything else is a 405 (JSON via
    JSONErrorsMiddleware), never the CSRF check's 403: probes read no cookies."""

    @csrf_exempt
    @never_cache
    @wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD"):
            return view(request)
        status = 204 if request.method == "OPTIONS" else 405
        return HttpResponse(status=status, headers={"Allow": ALLOW})

    return wrapped


@probe
def live(request: HttpRequest) -> JsonResponse:
    """The process is up and serving; touches nothing else."""
    return JsonResponse({"status": "ok"})


@probe
def ready(request: HttpRequest) -> JsonResponse:
    """The database answers a trivial query within HEALTH_DB_TIMEOUT_MS (else 503)."""
    started = time.perf_counter()
    try:
        _check_database()
    except DatabaseError as error:
        logger.warning("readiness: database check failed: %s", failure_cause(error))
        body = {"status": "unavailable", "database": "error", "latency_ms": _since(started)}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "latency_ms": _since(started)})


def _check_database() -> None:
    timeout = settings.HEALTH_DB_TIMEOUT_MS / 1000
    # The bound covers a pooler's queue and the connect too, not only the query.
    with database_deadline(timeout), transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Only this transaction gets the short limit; the session keeps its own.
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                [str(settings.HEALTH_DB_TIMEOUT_MS)],
            )
        cursor.execute(READY_QUERY)
        cursor.fetchone()


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
