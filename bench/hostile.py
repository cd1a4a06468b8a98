"""An attacker beside the 100 users: the bench's hostile scenario.

Threads on the bench host send what an abuser would, as fast as the app answers, from
the same address as the users (127.0.0.1, no trusted proxy: as if all were behind one
NAT): forged tokens past the failure limit, 20,000-word searches, oversized and
duplicate-key bodies, a write flood from the attacker's own account, unknown methods.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

THREADS = 4


class Attack:
    """`with Attack(url, token): ...` hammers `url` until the block ends."""

    def __init__(self, url: str, token: str, threads: int = THREADS) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token
        self.statuses: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def requests(self) -> list[tuple[str, str, str | None, dict[str, str]]]:
        own = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        words = "+".join(f"w{n}" for n in range(20_000))
        return [
            ("GET", "/api/tasks", None, {"Authorization": "Bearer forged.token.value"}),
            ("GET", f"/api/tasks?search={words}", None, own),
            ("GET", "/api/tasks?search=" + "+".join(["w" * 100] * 11), None, own),
            ("POST", "/api/tasks", '{"title": "' + "x" * 300_000 + '"}', own),
            ("POST", "/api/tasks", '{"title": "a", "title": "b"}', own),
            ("POST", "/api/tasks", '{"title": "flood"}', own),
            ("PROPFIND", "/health", None, {}),
        ]

    def _run(self) -> None:
        requests = self.requests()
        while not self._stop.is_set():
            for method, path, body, headers in requests:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                try:
                    # Through the same TLS proxy as the users (bench/load.lua).
                    headers = {**headers, "X-Forwarded-Proto": "https"}
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = str(response.status)
                except (OSError, http.client.HTTPException):
                    status = "connection error"
                finally:
                    conn.close()
                with self._lock:
                    self.statuses[status] += 1

    def __enter__(self) -> Attack:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self.seconds = time.monotonic() - self.started

    def to_json(self) -> dict:
        total = sum(self.statuses.values())
        return {
            "requests": total,
            "rps": round(total / max(self.seconds, 1e-9)),
            "statuses": dict(self.statuses),
        }
