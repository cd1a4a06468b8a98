"""Soak: a bounded mixed workload against gunicorn on loopback, with production rate limits.

Zero errors, and no growth in worker memory or open database connections between
the end of warm-up and the end of the run. Slow: `scripts/test -m slow -s` runs it and
prints its figures (also written to test-artifacts/soak.json). SOAK_SECONDS (120) and
SOAK_CONCURRENCY (100) size it.
"""

import datetime
import http.client
import json
import os
import random
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from tasks.models import Task
from tests.factories import UserFactory
from tests.reliability.server import ROOT, running_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
CONCURRENCY = int(os.environ.get("SOAK_CONCURRENCY", "100"))
WARM_UP = min(20.0, SECONDS / 6)
TASKS_PER_USER = 30
WORKERS, THREADS = 3, 4
MEMORY_GROWTH_ALLOWED = 1.10  # per worker, end of warm-up to end of run
SEARCHES = [
    "?search=report", "?sort_by=priority", "?status=pending&sort_by=due_date",
    "?priority=high&category=work", "?limit=10&offset=10", "?ordering=-updated_at,title",
]  # fmt: skip


class VirtualUser(threading.Thread):
    """One client: a keep-alive connection and a user's token, looping over a mixed workload."""

    def __init__(self, port: int, token: str, task_ids: list[str], deadline: float, seed: int):
        super().__init__(daemon=True)
        self.port, self.deadline = port, deadline
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.task_ids, self.created = task_ids, list[str]()
        self.random = random.Random(seed)
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.latencies: list[float] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while time.monotonic() < self.deadline:
            method, path, body, expected = self.next_request()
            started = time.monotonic()
            try:
                conn.request(method, path, body=body, headers=self.headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                self.errors.append(f"{method} {path}: {error!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            self.latencies.append(time.monotonic() - started)
            self.statuses[response.status] += 1
            if response.status != expected:
                self.errors.append(f"{method} {path}: {response.status} {data[:200]!r}")
            elif method == "POST":
                self.created.append(json.loads(data)["task"]["id"])
        conn.close()

    def next_request(self) -> tuple[str, str, str | None, int]:
        roll = self.random.random()
        task = self.random.choice(self.task_ids)
        if roll < 0.45:
            return "GET", "/api/tasks", None, 200
        if roll < 0.60:
            return "GET", "/api/tasks" + self.random.choice(SEARCHES), None, 200
        if roll < 0.70:
            return "GET", f"/api/tasks/{task}", None, 200
        if roll < 0.78 or not self.created:
            return "POST", "/api/tasks", '{"title": "soak", "priority": "high"}', 201
        if roll < 0.86:
            return "DELETE", f"/api/tasks/{self.created.pop(0)}", None, 204
        if roll < 0.93:
            return "PATCH", f"/api/tasks/{task}/complete", None, 200
        if roll < 0.98:
            return "PUT", f"/api/tasks/{task}", '{"title": "edited", "category": "work"}', 200
        return "GET", "/api/me", None, 200


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def database_connections() -> int:
    """Connections to the test database, other than this process's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def seed(users: int, server_key) -> list[tuple[str, list[str]]]:
    """Users with TASKS_PER_USER tasks each; returns (token, task ids) per user."""
    now, rows, result = timezone.now(), [], []
    for _ in range(users):
        user = UserFactory()
        tasks = [
            Task(user=user, title=f"report {n}", priority=random.choice(["low", "medium", "high"]),
                 due_date=now.date() + datetime.timedelta(days=n % 7 - 3), position=n)
            for n in range(TASKS_PER_USER)
        ]  # fmt: skip
        rows += tasks
        result.append((server_key.token_for(user), [str(task.pk) for task in tasks]))
    Task.objects.bulk_create(rows)
    return result


def test_soak(tmp_path, server_key):
    users = seed(CONCURRENCY, server_key)
    with running_server(
        tmp_path, WEB_CONCURRENCY=str(WORKERS), GUNICORN_THREADS=str(THREADS),
        GUNICORN_MAX_REQUESTS="0",  # no recycling: a leak must show
        RATE_LIMIT_WRITES="600/minute", RATE_LIMIT_AUTH_FAILURES="60/minute",
    ) as server:  # fmt: skip
        started = time.monotonic()
        deadline = started + SECONDS
        clients = [
            VirtualUser(server.port, token, ids, deadline, seed=n)
            for n, (token, ids) in enumerate(users)
        ]
        for client in clients:
            client.start()
        pids = server.wait_for_workers(WORKERS)
        samples = []  # (seconds, total worker RSS in KiB, database connections)
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            samples.append((round(time.monotonic() - started), sum(map(rss_kib, pids)),
                            database_connections()))  # fmt: skip
        for client in clients:
            client.join(timeout=60)
        rss_end = {pid: rss_kib(pid) for pid in pids}
        assert server.worker_pids() == pids, "a worker died or was replaced"
        log = server.log.read_text(errors="replace")

    statuses = sum((c.statuses for c in clients), Counter())
    errors = [error for c in clients for error in c.errors]
    latencies = sorted(x for c in clients for x in c.latencies)
    after_warm_up = [s for s in samples if s[0] >= WARM_UP]
    figures: dict[str, Any] = {
        "seconds": SECONDS,
        "concurrency": CONCURRENCY,
        "workers": f"{WORKERS} x {THREADS} threads",
        "requests": sum(statuses.values()),
        "requests_per_second": round(sum(statuses.values()) / SECONDS),
        "statuses": dict(statuses),
        "errors": len(errors),
        "latency_ms": {
            "p50": round(1000 * statistics.median(latencies), 1),
            "p99": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
            "max": round(1000 * latencies[-1], 1),
        },
        "worker_rss_mib": {
            "after_warm_up": round(after_warm_up[0][1] / 1024, 1),
            "end": round(sum(rss_end.values()) / 1024, 1),
            "per_worker_end": [round(kib / 1024, 1) for kib in rss_end.values()],
        },
        "db_connections": {
            "after_warm_up": after_warm_up[0][2],
            "end": samples[-1][2],
            "max": max(s[2] for s in samples),
        },
        "samples": samples,
    }
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "soak.json").write_text(json.dumps(figures, indent=2))
    print("\nsoak:", json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=2))

    assert not errors, errors[:20]
    assert "Traceback" not in log
    assert sum(statuses.values()) > SECONDS * 10, "the run did almost nothing"
    assert after_warm_up[-1][1] <= after_warm_up[0][1] * MEMORY_GROWTH_ALLOWED, figures
    # One persistent connection per worker thread at most, and no more at the end.
    assert figures["db_connections"]["max"] <= WORKERS * THREADS
    assert figures["db_connections"]["end"] <= figures["db_connections"]["after_warm_up"]
