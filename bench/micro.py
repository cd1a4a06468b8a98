"""Per-operation micro figures, in one process with the production settings.

`python -m bench.micro INPUT.json` (run by the benchmark against its seeded
database) prints one JSON object: token verification with keys cached,
serializing and rendering 1000 tasks, the stats aggregate, and how many SQL
queries each kind of request costs (through Django's test client, with a real
Bearer JWT).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def per_call(
    fn: Callable[..., Any],  # called with no arguments (lambdas binding theirs as defaults)
    *,
    seconds: float = 1.0,
    min_calls: int = 20,
    clock: Callable[[], float] = time.process_time,
) -> dict:
    """Best-of-5 mean of one call after a warm-up, in CPU time of this process by default.

    CPU time, not wall time: the machine is shared, and another process's burst
    should not count as ours. Pass `clock=time.perf_counter` where waiting on
    PostgreSQL is part of what is measured.
    """
    fn()
    calls, started = 0, clock()
    while calls < min_calls or clock() - started < seconds / 5:
        fn()
        calls += 1
    rounds = []
    for _ in range(5):
        started = clock()
        for _ in range(calls):
            fn()
        rounds.append((clock() - started) / calls)
    return {"best_us": round(min(rounds) * 1e6, 1), "median_us": round(sorted(rounds)[2] * 1e6, 1)}


def _first(module_name: str, names: tuple[str, ...]) -> Callable | None:
    try:
        module = __import__(module_name, fromlist=["_"])
    except ImportError:
        return None
    for name in names:
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    return None


def token_verification(token: str) -> dict:
    verify = _first("accounts.jwts", ("verify_jwt",))
    if verify is None:
        return {"skipped": "no verification function in accounts.jwts yet"}
    from accounts import jwts

    result = {"function": f"accounts.jwts.{verify.__name__}", **per_call(lambda: verify(token))}
    cache = getattr(jwts, "verified_tokens", None)
    if cache is not None:  # a token seen for the first time: the full check, keys cached

        def first_sight() -> None:
            cache.clear()
            verify(token)

        result["first_sight"] = per_call(first_sight)
    # The floor under a first verification on this host: Ed25519's own check of a
    # signature over an input of the same length, in the same library as PyJWT's.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key, message = Ed25519PrivateKey.generate(), token.rpartition(".")[0].encode()
    signature, public_key = key.sign(message), key.public_key()
    result["ed25519_verify"] = per_call(lambda: public_key.verify(signature, message))
    return result


def serialization(user_id: str) -> dict:
    from rest_framework.renderers import JSONRenderer

    from tasks.models import Task

    try:
        from tasks.serializers import TaskSerializer
    except ImportError:
        return {"skipped": "tasks.serializers not found yet"}
    tasks = list(Task.objects.filter(user_id=user_id).order_by("-created_at", "-id")[:1000])
    renderer = JSONRenderer()
    data = TaskSerializer(tasks, many=True).data
    return {
        "tasks": len(tasks),
        "serialize": per_call(lambda: TaskSerializer(tasks, many=True).data, seconds=2),
        "render_json": per_call(lambda: renderer.render(data), seconds=1),
        "fetch_rows": per_call(
            lambda: list(Task.objects.filter(user_id=user_id).order_by("-created_at")[:1000]),
            seconds=1,
        ),  # CPU of this process: model instances, type loaders; not PostgreSQL's work
    }


def stats_aggregate(user_ids: dict[str, str]) -> dict:
    from tasks.models import Task

    stats = _first("tasks.services", ("task_stats",))
    if stats is None:
        return {"skipped": "no tasks.services.task_stats"}
    result: dict[str, Any] = {"function": f"tasks.services.{stats.__name__}"}
    for label, user_id in user_ids.items():
        queryset = Task.objects.filter(user_id=user_id)
        result[label] = per_call(lambda q=queryset: stats(queryset=q), clock=time.perf_counter)
    return result


def list_etag(user_id: str) -> dict:
    """What answering If-None-Match on a 1000-task list costs (wall time, PostgreSQL's work
    included) beside building the list, and the plan of its one query."""
    from django.db import connection
    from django.http import QueryDict

    from accounts.models import User
    from config.sql import compile_aggregate
    from tasks import selectors

    user, params = User.objects.by_id(user_id), QueryDict()
    assert user is not None  # the benchmark's own user
    filtered = selectors.task_filter(user=user, params=params)
    compiled = compile_aggregate(filtered, selectors.ETAG_AGGREGATES, user_id)
    assert compiled is not None  # a list's aggregate compiles on PostgreSQL
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + compiled.sql, compiled.bind(user_id))
        plan = [row[0].strip() for row in cursor.fetchall()]

    def etag() -> str:  # as the list view: the filtered set, then its ETag
        queryset = selectors.task_filter(user=user, params=params)
        return selectors.task_list_etag(user=user, queryset=queryset, params=params)

    return {
        "etag_query": per_call(etag, clock=time.perf_counter),
        "whole_list": per_call(
            lambda: selectors.task_list(user=user, params=params), clock=time.perf_counter
        ),
        "plan": [line for line in plan if "Scan" in line or "Heap Fetches" in line],
    }


def query_counts(token_by_user: dict[str, str], task_id: str) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    counts: dict[str, Any] = {}
    for label, (user_id, token, path) in {
        "list_200": (*token_by_user["regular"], "/tasks"),
        "list_1000": (*token_by_user["big"], "/tasks"),
        "list_200_limit_10": (*token_by_user["regular"], "/tasks?limit=10"),
        "heavy_page": (*token_by_user["heavy"], "/tasks?limit=50"),
        "get": (*token_by_user["regular"], f"/tasks/{task_id}"),
        "profile": (*token_by_user["regular"], "/profile"),
    }.items():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_FORWARDED_PROTO="https")
        client.get(f"/api/{user_id}{path}")  # warm: key cache, connection
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/api/{user_id}{path}")
        counts[label] = {"status": response.status_code, "queries": len(captured)}
    return counts


def _wsgi(
    app: Callable,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    query: str = "",
    extra: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request straight into a WSGI app, as gunicorn would hand it over; `extra` is
    more of the environ (headers as HTTP_*); `response_headers` receives the response's."""
    payload = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_X_FORWARDED_PROTO": "https",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "https",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **(extra or {}),
    }
    started: list[str] = []

    def start_response(status: str, headers: list, exc_info: Any = None) -> None:
        started.append(status)
        if response_headers is not None:
            response_headers.update(headers)

    result = app(environ, start_response)
    content = b"".join(result)
    if hasattr(result, "close"):
        result.close()  # Django's request_finished: connection bookkeeping, as in production
    return int(started[0][:3]), content


def request_cpu(spec: dict) -> dict:
    """CPU of this process per request, app vs ceiling, with no HTTP server in between.

    The most stable figure on a shared machine (CPU time, best of 5 rounds): use
    it to measure an optimisation; the load figures show whether it matters.
    """
    from django.core.wsgi import get_wsgi_application

    from bench import ceiling

    apps: dict[str, Callable[..., Any]] = {
        "app": get_wsgi_application(),
        "ceiling": ceiling.application,
    }
    user_id, token = spec["users"]["regular"]
    big_id, big_token = spec["users"]["big"]
    task = f"/api/{user_id}/tasks/{spec['task_id']}"
    form = {"title": "Bench edit", "description": "x", "priority": "high", "category": "work",
            "due_date": "2027-01-31"}  # fmt: skip
    # The frontend's refetch of an unchanged 1000-task list, with its last ETag.
    etag: dict[str, str] = {}
    _wsgi(apps["app"], "GET", f"/api/{big_id}/tasks", big_token, response_headers=etag)
    refetch = {"HTTP_IF_NONE_MATCH": etag["ETag"]}
    requests: dict[str, tuple[Any, ...]] = {
        "get": ("GET", task, token, None, ""),
        "list_200": ("GET", f"/api/{user_id}/tasks", token, None, ""),
        "list_1000": ("GET", f"/api/{big_id}/tasks", big_token, None, ""),
        "refetch_1000": ("GET", f"/api/{big_id}/tasks", big_token, None, "", refetch),
        "list_filter": ("GET", f"/api/{user_id}/tasks", token, None,
                        "status=pending&sort_by=priority&order=desc"),
        "list_search": ("GET", f"/api/{user_id}/tasks", token, None, "search=invoice"),
        "profile": ("GET", f"/api/{user_id}/profile", token, None, ""),
        "put": ("PUT", task, token, form, ""),
        "toggle": ("PATCH", f"{task}/complete", token, None, ""),
    }  # fmt: skip
    result: dict[str, dict] = {}
    for name, app in apps.items():
        figures: dict[str, Any] = {}
        for op, (method, path, who, body, query, *more) in requests.items():
            extra = more[0] if more else None
            if extra and name == "ceiling":
                continue  # conditional requests: the app's alone
            expected = 304 if extra else 200
            status, content = _wsgi(app, method, path, who, body, query, extra)
            if status != expected:
                figures[op] = {"error": f"status {status}"}
                continue
            seconds = 2.0 if op == "list_1000" else 1.0
            figures[op] = per_call(
                lambda a=app, m=method, p=path, w=who, b=body, q=query, e=extra: _wsgi(
                    a, m, p, w, b, q, e
                ),
                seconds=seconds,
            )
            figures[op]["body_bytes"] = len(content)
            status, _ = _wsgi(app, method, path, who, body, query, extra)
            if status != expected:  # e.g. rate limited: the figure would be of the wrong path
                figures[op] = {"error": f"status {status} after timing"}
        created: list[str] = []

        def create(app: Callable = app, created: list[str] = created) -> None:
            status, content = _wsgi(app, "POST", f"/api/{user_id}/tasks", token, form)
            created.append(json.loads(content)["task"]["id"])

        figures["create"] = per_call(create, seconds=0.5)
        # Delete what was created: five equal rounds, best round's mean.
        per_round, rounds = len(created) // 5, []
        for _ in range(5):
            started = time.process_time()
            for _ in range(per_round):
                _wsgi(app, "DELETE", f"/api/{user_id}/tasks/{created.pop()}", token)
            rounds.append((time.process_time() - started) / per_round)
        for task_id in created:
            _wsgi(app, "DELETE", f"/api/{user_id}/tasks/{task_id}", token)
        figures["delete"] = {"best_us": round(min(rounds) * 1e6, 1)}
        result[name] = figures
    return result


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    import django

    django.setup()
    figures: dict[str, Any] = {}
    steps = {
        "token_verification": lambda: token_verification(spec["token"]),
        "serialize_1000": lambda: serialization(spec["users"]["big"][0]),
        "stats_aggregate": lambda: stats_aggregate(
            {"user_200": spec["users"]["regular"][0], "user_100k": spec["users"]["heavy"][0]}
        ),
        "queries_per_request": lambda: query_counts(spec["users"], spec["task_id"]),
        "list_etag": lambda: list_etag(spec["users"]["big"][0]),
        "request_cpu": lambda: request_cpu(spec),
    }
    only = os.environ.get("BENCH_MICRO_ONLY", "")
    for name, step in steps.items():
        if only and name not in only.split(","):
            continue
        try:
            figures[name] = step()
        except Exception as error:  # noqa: BLE001 - report, never abort the whole benchmark
            figures[name] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
