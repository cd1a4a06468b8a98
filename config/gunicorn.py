"""gunicorn settings (`gunicorn -c config/gunicorn.py config.wsgi`), overridable by env."""

import gc
import json
import multiprocessing
import os
import socket
import sys

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# gthread workers: connections are kept alive between requests, and a client idling
# on its connection waits in the worker's poller instead of holding a whole sync
# worker (sync workers need a buffering proxy in front for that). Two processes per
# core plus one (gunicorn's own rule), two threads each: the threads overlap
# PostgreSQL waits, and the processes keep CPU work out of each other's GIL
# (scripts/bench measured it against fewer, wider workers).
# GUNICORN_THREADS=1 gives the plain sync worker.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Header lines up to 16 KiB reach the app (gunicorn's default is 8190 bytes), so an oversized
# Authorization header gets the API's own 401 JSON ("token too large") rather than
# gunicorn's bare 431 page; longer lines still get that 431.
limit_request_field_size = 16384
limit_request_line = 4094  # gunicorn's default: the longest URL is about 4 KB
limit_request_fields = 100  # gunicorn's default
# gunicorn itself trusts X-Forwarded-Proto (wsgi.url_scheme) only from these addresses:
# nobody unless RATE_LIMIT_NUM_PROXIES says a proxy is in front.
_behind_proxy = int(os.environ.get("RATE_LIMIT_NUM_PROXIES") or 0) > 0
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1" if _behind_proxy else "")

# What gunicorn answers itself, before Django sees the request, in the API's error shape.
GUNICORN_ERRORS = {
    400: "Malformed HTTP request.",
    403: "Request forbidden.",
    414: f"Request line too long: at most {limit_request_line} bytes (method, URL and version).",
    417: "Expectation failed.",
    431: (
        f"Request headers too large: at most {limit_request_fields} header fields of "
        f"{limit_request_field_size} bytes each."
    ),
    500: "Internal server error.",
    501: "Transfer coding not implemented.",
}

# The app is imported once, in the master, then forked: workers share its memory and
# answer their first request warm instead of each importing the app on its first one.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() not in {"0", "false", "no"}
# A thread waiting on PostgreSQL gets the GIL back within this many seconds of its
# answer, instead of Python's default 5 ms: a small request no longer waits out
# slices of a 1000-task list rendering in another thread of its worker.
switch_interval = float(os.environ.get("PYTHON_SWITCH_INTERVAL", "0.001"))
# Python's cyclic collector runs a young pass every 700 net allocations of containers
# (its default); a 1000-task list makes thousands, all freed by reference counting
# once the response is sent (ReleaseRequestMiddleware breaks the cycles), so passes at
# the default rate would scan short-lived objects for nothing.
gc_threshold = int(os.environ.get("PYTHON_GC_THRESHOLD", "10000"))


def json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's util.write_error, answering JSON instead of an HTML page.

    gunicorn has no setting for its own error pages; its workers call
    `gunicorn.util.write_error` for requests it refuses to parse (bad request lines,
    oversized URLs and headers, NUL in a header, Content-Length with
    Transfer-Encoding), so on_starting replaces that function in the master, before
    any worker is forked. The message is ours, never the request's bytes.
    """
    from gunicorn.util import write_nonblock

    message = GUNICORN_ERRORS.get(status_int, f"{reason}.")
    # config.errors' shape, written here: this runs without Django (bench/ceiling.py too).
    code = "FORBIDDEN" if status_int == 403 else "VALIDATION_ERROR"
    code = "INTERNAL_ERROR" if status_int >= 500 else code
    error = {"code": code, "message": message, "details": None}
    body = json.dumps({"detail": message, "error": error}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    write_nonblock(sock, head.encode("latin-1") + body)


def on_starting(server: object) -> None:
    import gunicorn.util

    gunicorn.util.write_error = json_error


def when_ready(server: object) -> None:
    """In the master, before any worker exists: load everything a request needs."""
    from django.apps import apps

    if preload_app and apps.ready:  # a Django app was loaded (not so for bench/ceiling.py)
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - imports every view, serializer and schema
    sys.setswitchinterval(switch_interval)
    gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])  # inherited by the workers


def pre_fork(server: object, worker: object) -> None:
    # Everything loaded so far lives as long as the process: move it out of the garbage
    # collector's reach. A full collection then scans only what requests allocate: it
    # scanned every object of the loaded app, a stall of every thread.
    gc.collect()
    gc.freeze()
