"""JSON at every edge, over real HTTP against gunicorn (production settings).

What a hostile client reaches before or around the API: gunicorn's own refusals,
Django's method, path, CSRF and Host handling, the docs and admin pages, odd bodies.
Every answer is the API's JSON error shape, never HTML, a traceback or a 500.
"""

import socket
import time

import pytest

from tests.reliability.server import Reply, Server
from tests.tokens import bearer_for

pytestmark = pytest.mark.django_db(transaction=True)

ROUTES = [
    "/health", "/health/ready", "/docs", "/redoc", "/api/schema/", "/api/tasks", "/api/tasks/",
    "/api/tasks/stats", "/api/tasks/0191c2c8-0000-7000-8000-000000000000",
    "/api/tasks/0191c2c8-0000-7000-8000-000000000000/complete", "/api/me", "/api/u1/tasks",
    "/api/u1/profile", "/admin/", "/admin/login/", "/api/unknown", "/api/unknown/thing",
    "/nowhere", "/static/nothing.js",
]  # fmt: skip
MISSING = {"/api/unknown", "/api/unknown/thing", "/nowhere", "/static/nothing.js"}
METHODS = ["OPTIONS", "PROPFIND", "TRACE", "POST", "DELETE", "BREW"]
HTML_PAGES = ["/docs", "/redoc", "/admin/login/"]


def assert_error_shape(reply: Reply, status: int | None = None) -> dict:
    if status is not None:
        assert reply.status == status, reply.body[:300]
    assert reply.headers["Content-Type"].startswith("application/json"), reply.body[:300]
    body = reply.json()
    assert body["detail"] == body["error"]["message"]
    assert set(body["error"]) == {"code", "message", "details"}
    return body


def raw(server: Server, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `data` as is (what http.client refuses to write) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_every_route_is_answered_without_a_500(server, method):
    for path in ROUTES:
        reply = server.request(method, path, headers={"Content-Type": "application/json"}, body="")
        assert reply.status < 500, (method, path, reply.status, reply.body[:200])
        if reply.status >= 400:
            assert_error_shape(reply)
        if method == "OPTIONS" and path not in MISSING:
            assert reply.status in (200, 204, 302, 401), (path, reply.status)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/unknown/thing", 404),  # was Django's HTML CSRF page
        ("POST", "/api/unknown", 404),
        ("PROPFIND", "/health", 405),
        ("DELETE", "/health/ready", 405),
        ("POST", "/docs", 405),
        ("GET", "/nowhere", 404),
        ("POST", "/admin/login/", 403),  # no CSRF token: the JSON CSRF failure
    ],
)
def test_unknown_methods_paths_and_csrf_failures_are_json(server, method, path, status):
    body = assert_error_shape(server.request(method, path, body=""), status)
    if status == 403:
        assert body["error"]["message"].startswith("CSRF verification failed")


def test_a_disallowed_host_is_a_json_400_logged_as_one_warning_line(server):
    before = server.log.read_text(errors="replace")
    reply = server.request("GET", "/api/tasks", headers={"Host": "evil.example"})
    assert_error_shape(reply, 400)
    time.sleep(0.2)
    added = server.log.read_text(errors="replace")[len(before) :]
    assert "DisallowedHost" in added or "Invalid HTTP_HOST" in added, added
    assert "Traceback" not in added
    assert '"level": "ERROR"' not in added


class TestGunicornRefusals:
    """Requests gunicorn refuses before the app runs: still the API's JSON shape."""

    def test_a_url_over_4_kb_is_a_json_414(self, server):
        status, headers, body = raw(
            server,
            b"GET /api/tasks?search=" + b"w+" * 3000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        )
        assert (status, headers["content-type"]) == (414, "application/json")
        assert b"4094" in body

    @pytest.mark.parametrize(
        "headers",
        [
            b"Authorization: Bearer " + b"a" * 17_000 + b"\r\n",
            b"".join(b"X-H%d: v\r\n" % n for n in range(200)),
        ],
        ids=["17 KB header", "200 headers"],
    )
    def test_oversized_headers_are_a_json_431(self, server, headers):
        status, got, body = raw(
            server, b"GET /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"
        )
        assert (status, got["content-type"]) == (431, "application/json"), body[:200]

    @pytest.mark.parametrize(
        "request_bytes",
        [
            b"GET /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x00b\r\n\r\n",
            b"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ],
        ids=["NUL in a header", "Content-Length and Transfer-Encoding"],
    )
    def test_malformed_requests_are_a_json_400(self, server, request_bytes):
        status, headers, body = raw(server, request_bytes)
        assert (status, headers["content-type"]) == (400, "application/json"), body[:200]
        assert b"\x00" not in body


class TestBodies:
    @pytest.fixture
    def auth(self, server, server_key, user):
        return {"Authorization": bearer_for(user, server_key), "Content-Type": "application/json"}

    def test_duplicate_keys_are_refused(self, server, auth):
        reply = server.request("POST", "/api/tasks", headers=auth, body='{"title":"a","title":"b"}')
        body = assert_error_shape(reply, 400)
        assert "duplicate key" in body["error"]["message"]

    @pytest.mark.parametrize(
        ("payload", "internal"),
        [
            ('{"title": "x", "position": ' + "9" * 5000 + "}", "set_int_max_str_digits"),
            ("[" * 100_000, "recursion"),
        ],
    )
    def test_400s_never_echo_interpreter_internals(self, server, auth, payload, internal):
        body = assert_error_shape(server.request("POST", "/api/tasks", headers=auth, body=payload))
        assert body["error"]["code"] == "VALIDATION_ERROR"
        assert internal not in body["error"]["message"].lower()
        assert "sys." not in body["error"]["message"]

    def test_a_20000_word_search_is_refused_at_once(self, server, auth):
        """gunicorn's 4 KB request line stops the 20,000 words; the longest search that
        fits in a URL is the app's prompt 400 naming the limit."""
        words = " ".join(f"w{n}" for n in range(20_000))
        reply = server.request("GET", f"/api/tasks?search={words.replace(' ', '+')}", headers=auth)
        assert_error_shape(reply, 414)
        many = "+".join(f"w{n}" for n in range(700))  # about 4 KB of URL
        reply = server.request("GET", f"/api/tasks?search={many}", headers=auth)
        body = assert_error_shape(reply, 400)
        assert body["error"]["message"].startswith("search: At most")
        print(f"\n700-word search over REST: 400 in {reply.seconds * 1000:.1f} ms (wall)")
        assert reply.seconds < 5


class TestHeaders:
    @pytest.mark.parametrize("path", HTML_PAGES)
    def test_html_pages_have_a_content_security_policy_for_local_files_only(self, server, path):
        reply = server.request("GET", path)
        assert reply.status == 200
        policy = reply.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "http" not in policy  # no other origin, no CDN
        assert "'unsafe-eval'" not in policy

    def test_json_answers_have_a_policy_that_loads_nothing(self, server):
        reply = server.request("GET", "/api/tasks")
        assert reply.headers["Content-Security-Policy"].startswith("default-src 'none'")

    def test_x_forwarded_proto_from_a_client_is_not_trusted(self, server):
        """No proxy configured (RATE_LIMIT_NUM_PROXIES=0): the header changes nothing. HSTS
        goes only on https responses, so it shows whether the request counted as https."""
        reply = server.request("GET", "/health", headers={"X-Forwarded-Proto": "https"})
        assert reply.status == 200
        assert "Strict-Transport-Security" not in reply.headers
