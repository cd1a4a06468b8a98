"""Tenancy over real HTTP with real credentials: another user's task is a 404 on every
route of both mounts, another user's id in the path a 403, and credentials stop working
the moment Better Auth deletes the user or the session."""

import pytest
from django.db import connection

from tasks.models import Task
from tests.factories import SessionFactory, TaskFactory, UserFactory
from tests.tokens import signed_session_token

pytestmark = pytest.mark.django_db(transaction=True)


def routes(prefix: str, task_id: str) -> list[tuple[str, str, str | None]]:
    detail = f"{prefix}/tasks/{task_id}"
    return [
        ("GET", detail, None),
        ("PUT", detail, '{"title": "mine now"}'),
        ("PATCH", detail, '{"title": "mine now"}'),
        ("PATCH", f"{detail}/complete", None),
        ("PATCH", f"{detail}/complete", '{"completed": true}'),
        ("DELETE", detail, None),
    ]


@pytest.fixture
def intruder(server, server_key, user, other_user):
    """`user` with a real Better Auth JWT, and `other_user`'s task as the target."""
    theirs = TaskFactory(user=other_user, title="their secret", completed=False)
    headers = {
        "Authorization": f"Bearer {server_key.token_for(user)}",
        "Content-Type": "application/json",
    }
    return server, headers, theirs


@pytest.mark.parametrize("mounted", [False, True], ids=["api", "api-user"])
def test_another_users_task_is_404_on_every_route(intruder, user, other_user, mounted):
    server, headers, theirs = intruder
    prefix = f"/api/{user.pk}" if mounted else "/api"
    for method, path, body in routes(prefix, str(theirs.pk)):
        reply = server.request(method, path, headers=headers, body=body)
        assert reply.status == 404, (method, path, reply.body)
        assert reply.json()["error"]["code"] == "NOT_FOUND"
        assert b"their secret" not in reply.body
    for path in (f"{prefix}/tasks", f"{prefix}/tasks?search=secret", f"{prefix}/tasks/stats"):
        body = server.request("GET", path, headers=headers).json()
        assert body.get("total", body.get("total_tasks")) == 0, (path, body)
    row = Task.objects.get(pk=theirs.pk)
    assert (row.title, row.completed, row.user_id) == ("their secret", False, other_user.pk)


def test_another_users_id_in_the_path_is_403_on_every_route(intruder, other_user):
    server, headers, theirs = intruder
    prefix = f"/api/{other_user.pk}"
    requests = [
        *routes(prefix, str(theirs.pk)),
        ("GET", f"{prefix}/tasks", None),
        ("POST", f"{prefix}/tasks", '{"title": "planted"}'),
        ("GET", f"{prefix}/tasks/stats", None),
        ("GET", f"{prefix}/profile", None),
        ("PUT", f"{prefix}/profile", '{"name": "renamed"}'),
    ]
    for method, path, body in requests:
        reply = server.request(method, path, headers=headers, body=body)
        assert reply.status == 403, (method, path, reply.body)
        assert reply.json()["error"]["code"] == "FORBIDDEN"
        assert b"their secret" not in reply.body
    assert list(Task.objects.values_list("title", flat=True)) == ["their secret"]
    other_user.refresh_from_db()
    assert other_user.name != "renamed"


def test_a_deleted_users_credentials_stop_working_at_once(server, server_key):
    doomed = UserFactory()
    session = SessionFactory(user=doomed)
    credentials = [
        f"Bearer {server_key.token_for(doomed)}",
        f"Bearer {signed_session_token(session.token, server.better_auth_secret)}",
    ]
    for value in credentials:
        assert server.request("GET", "/api/me", headers={"Authorization": value}).status == 200
    with connection.cursor() as cursor:  # as Better Auth deletes a user: plain SQL
        cursor.execute('DELETE FROM "user" WHERE id = %s', [doomed.pk])
    for value in credentials:
        reply = server.request("GET", "/api/me", headers={"Authorization": value})
        assert reply.status == 401, reply.body
        assert reply.json()["error"]["code"] == "AUTH_REQUIRED"


def test_a_signed_out_session_stops_working_at_once(server, user):
    session = SessionFactory(user=user)
    for_cookie = signed_session_token(session.token, server.better_auth_secret)
    headers = [
        {"Authorization": f"Bearer {for_cookie}"},
        {"Authorization": f"Bearer {session.token}"},
        {"Cookie": f"better-auth.session_token={for_cookie}"},
    ]
    for header in headers:
        assert server.request("GET", "/api/tasks", headers=header).status == 200
    session.delete()  # signing out deletes the row
    for header in headers:
        reply = server.request("GET", "/api/tasks", headers=header)
        assert (reply.status, reply.json()["detail"]) == (401, "session not found"), header
