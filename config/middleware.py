"""Request tracing (an X-Request-ID on every response, one log line per request),
refusal of request bodies Django cannot read, release of each request's objects, and
Django's admin-only middleware kept off the API's paths."""

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware import csrf
from django.utils.functional import SimpleLazyObject, empty

from config.errors import error_body
from config.logs import request_id_var

logger = logging.getLogger("tasks_api.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is reused only when it is short and plain: it ends up in logs and headers.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


class ReleaseRequestMiddleware:
    """Once a response is complete, break the reference cycles Django and DRF leave
    between the request's objects, so reference counting frees them at once.

    Left alone, every request's objects hang in cycles until Python's cyclic garbage
    collector finds them, a list's whole page included. A collection holds the GIL,
    so its pauses stall every thread of the worker and show in the tail latency. The
    cycles (DRF issues #5826 and #7250):
    the view and its bound handlers, `view.request`/`view.response` and the contexts
    that point back at them, each serializer and its fields (`field.parent`) and data
    (`data.serializer`), and `request.auser` / `request._messages` (Django's auth and
    messages middleware). Goes first in MIDDLEWARE: everything else is done by then.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name in ("auser", "_messages"):  # a partial and storages that hold the request
            request.__dict__.pop(name, None)
        context = getattr(response, "renderer_context", None)  # DRF: view, request, response
        if context:
            response.renderer_context = None  # type: ignore[attr-defined]  # DRF's Response
            if (view := context.get("view")) is not None:
                view.__dict__.clear()
            if (drf_request := context.get("request")) is not None:
                drf_request.parser_context = None
        data = getattr(response, "data", None)
        for value in [data, *data.values()] if isinstance(data, dict) else [data]:
            if (serializer := getattr(value, "serializer", None)) is not None:  # ReturnDict/List
                _release_field(serializer)
        return response


def _release_field(field: Any) -> None:
    """Drop what a serializer (or field) holds: its fields and `child` point back at it."""
    attributes = vars(field)
    nested = [*attributes["fields"].values()] if "fields" in attributes else []
    if attributes.get("child") is not None:  # ListSerializer, ListField
        nested.append(attributes["child"])
    attributes.clear()
    for inner in nested:
        _release_field(inner)


class RequestIDMiddleware:
    """Take a sane X-Request-ID or make one, expose it to logs, echo it, log the request.

    Second in MIDDLEWARE, right after ReleaseRequestMiddleware (which only acts once the
    response is complete), so the id and the timing cover every other middleware
    (redirects, CORS preflights and static files included). The line carries the
    path without its query string, and never headers, cookies or bodies.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _incoming_request_id(request) or uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            level = logging.ERROR if response.status_code >= 500 else logging.INFO
            if not logger.isEnabledFor(level):  # LOG_LEVEL=warning: nothing to build
                return response
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            user = _user_fields(request)
            logger.log(
                level,
                "%s %s %s %.1fms%s",
                request.method,
                request.path,
                response.status_code,
                duration_ms,
                "".join(f" {key}={value}" for key, value in user.items()),
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                    **user,
                },
            )
            return response
        finally:
            request_id_var.reset(token)


def _incoming_request_id(request: HttpRequest) -> str | None:
    # META, not request.headers: that would copy every header into a new mapping.
    value = request.META.get("HTTP_X_REQUEST_ID", "")
    return value if SANE_REQUEST_ID.fullmatch(value) else None


def _user_fields(request: HttpRequest) -> dict[str, Any]:
    """`user_id` of an API caller, `staff_id` of an admin user; nothing for anonymous calls."""
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return {}  # never load a session user just to log it
    if not user.is_authenticated:
        return {}
    if isinstance(user, AbstractBaseUser):  # Django's own users: admin staff
        return {"staff_id": str(user.pk)}
    return {"user_id": str(user.pk)}


class ContentLengthRequiredMiddleware:
    """Refuse a chunked request body (no Content-Length) with 411 and the error shape.

    Under WSGI, Django reads a body only up to its Content-Length, so a chunked body
    would silently count as no body at all: a `PATCH .../complete` meant to set
    `{"completed": false}` would toggle instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH"):
            message = "Send the request body with a Content-Length header, not chunked."
            return JsonResponse(error_body(411, message), status=411)
        return self.get_response(request)


# Headers of an error response that still mean something once its body is JSON.
_KEPT_ERROR_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary", "Cache-Control")


class JSONErrorsMiddleware:
    """Any error response that is not JSON gets the API's JSON error shape instead.

    The API, the health probes and the error handlers already answer JSON; this
    catches what Django and third-party views answer on their own: `require_safe`'s
    empty 405, the docs views' HTML error pages, a redirect-less 400. A view can
    keep an HTML error page for people (the admin's sign-in throttle) by setting
    `response.html_error = True`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        status = response.status_code
        if status < 400 or getattr(response, "html_error", False) or response.streaming:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        if status == 405:
            message = f"Method {request.method} not allowed."
        else:
            try:
                message = HTTPStatus(status).phrase + "."
            except ValueError:
                message = "Request failed."
        replacement = JsonResponse(error_body(status, message), status=status)
        for name in _KEPT_ERROR_HEADERS:
            if name in response:
                replacement[name] = response[name]
        return replacement


# Swagger UI, Redoc and the admin load only this service's own files: scripts from
# 'self' (Swagger's start-up script is served as a file, not inline), styles from 'self'
# and inline (Redoc and Swagger set style attributes and <style> elements), images
# from 'self' and data: URLs, requests to 'self' (the schema, the API), Redoc's search
# worker from a blob:. Nothing may load from anywhere else or frame these pages.
HTML_PAGES_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "manifest-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
# Everything else is JSON, never a document: it may load nothing at all.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HTML_PAGE_PATHS = ("/docs", "/redoc", "/admin/")


class ContentSecurityPolicyMiddleware:
    """A Content-Security-Policy on every response: strict for JSON, the HTML pages' own
    for the docs and the admin. (Django 5.2 has no CSP support; django-csp sets one
    global policy, and the docs views are third-party ones.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            html = request.path.startswith(HTML_PAGE_PATHS)
            response["Content-Security-Policy"] = HTML_PAGES_POLICY if html else API_POLICY
        return response


# The API, MCP and the health probes: JSON for Bearer credentials (or Better Auth's own
# session cookie, checked in accounts.authentication). Nothing there reads a Django
# session, a user from one, messages or the CSRF cookie: every view there is csrf_exempt,
# and cookie-authenticated API writes are checked against trusted origins by
# BetterAuthSessionAuthentication. Those four middleware serve the admin.
API_PATHS = ("/api/", "/mcp", "/health")


class _SiteOnly:
    """Run the Django middleware this is mixed into for every path but API_PATHS."""

    # MiddlewareMixin's type (sync or async responses), so the mixed classes agree.
    get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if request.path_info.startswith(API_PATHS):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_SiteOnly, sessions_middleware.SessionMiddleware):
    """Django's, off API_PATHS."""


class CsrfViewMiddleware(_SiteOnly, csrf.CsrfViewMiddleware):
    """Django's, off API_PATHS: no CSRF cookie is read or set there. Its process_view
    still runs for every view, so a view that is not csrf_exempt stays protected
    wherever it is mounted."""


class AuthenticationMiddleware(_SiteOnly, auth_middleware.AuthenticationMiddleware):
    """Django's, off API_PATHS: DRF's authentication sets `request.user` there."""


class MessageMiddleware(_SiteOnly, messages_middleware.MessageMiddleware):
    """Django's, off API_PATHS."""
