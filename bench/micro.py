"""Per-operation micro figures, in one process with the production settings.

`python -m bench.micro INPUT.json` (run by the benchmark against its seeded
database) prints one JSON object: token verification with keys cached,
serializing and rendering 1000 tasks, the stats aggregate, and how many SQL
queries each kind of request costs (through Django's test client, with a real
Bearer JWT).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def per_call(fn: Callable[[], Any], *, seconds: float = 1.0, min_calls: int = 20) -> dict:
    """Best-of-5 mean of one call, after a warm-up call (caches, JIT-less but still)."""
    fn()
    calls, started = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - started < seconds / 5:
        fn()
        calls += 1
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - started) / calls)
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
    verify = _first("accounts.tokens", ("verify_jwt",))
    if verify is None:
        return {"skipped": "no verification function in accounts.tokens yet"}
    return {"function": f"accounts.tokens.{verify.__name__}", **per_call(lambda: verify(token))}


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
        ),
    }


def stats_aggregate(user_ids: dict[str, str]) -> dict:
    from tasks.models import Task

    stats = _first("tasks.services", ("task_stats",))
    if stats is None:
        return {"skipped": "no tasks.services.task_stats"}
    result: dict[str, Any] = {"function": f"tasks.services.{stats.__name__}"}
    for label, user_id in user_ids.items():
        queryset = Task.objects.filter(user_id=user_id)
        result[label] = per_call(lambda q=queryset: stats(queryset=q))
    return result


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
    }
    for name, step in steps.items():
        try:
            figures[name] = step()
        except Exception as error:  # noqa: BLE001 - report, never abort the whole benchmark
            figures[name] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
