"""The malformed-body guarantees hold through gunicorn too: what reaches the wire is
answered with a 4xx JSON error, fast, and nothing is written."""

import pytest

from tasks.models import Task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def headers(server_key, user):
    return {"Authorization": f"Bearer {server_key.token_for(user)}"}


def assert_error(reply, status):
    assert reply.status == status, reply.body[:300]
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json()["error"]["code"] == "VALIDATION_ERROR"
    assert reply.seconds < 2


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", '{"title": "' + "x" * 2_000_000 + '"}', 413),
        ("application/json", "[" * 100_000 + "]" * 100_000, 400),
        ("application/json", b'{"title": "\xff\xfe"}', 400),
        ("application/json", '{"title": "a\\u0000b"}', 400),
        ("application/json", '{"title": 12}', 400),
        ("text/plain", '{"title": "x"}', 415),
        (None, '{"title": "x"}', 415),
    ],
    ids=["2-mb", "deep", "invalid-utf8", "nul", "wrong-type", "text-plain", "no-content-type"],
)
def test_bad_bodies_over_http(server, headers, content_type, body, status):
    if content_type:
        headers = {**headers, "Content-Type": content_type}
    assert_error(server.request("POST", "/api/tasks", headers=headers, body=body), status)
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/api/tasks", b'{"title": "' + b"x" * 300_000 + b'"}'),
     ("POST", "/api/tasks", b'{"title": "x"}'),
     ("PATCH", "/api/tasks/{id}/complete", b'{"completed": false}')],
    ids=["over-the-limit", "small", "set-completed"],
)  # fmt: skip
def test_a_chunked_body_is_411_not_read_as_no_body(server, headers, user, method, path, body):
    """Django cannot read a chunked body under WSGI: it would pass for none at all."""
    task = Task.objects.create(user=user, title="t", completed=True)
    wire = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    reply = server.request(
        method, path.format(id=task.pk), body=wire,
        headers={**headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )  # fmt: skip
    assert_error(reply, 411)
    assert list(Task.objects.values_list("title", "completed")) == [("t", True)]
