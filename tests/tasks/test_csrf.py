"""CSRF on the real task and profile routes: a browser's cookie-authenticated write must come
from a trusted origin (PUT, PATCH and DELETE as well as POST), on both mounts; Bearer
credentials need no origin. A refused write changes nothing."""

import pytest
from rest_framework.test import APIClient

from tasks.models import Task
from tests.factories import SessionFactory, TaskFactory
from tests.tokens import app_token, session_cookie_value

pytestmark = pytest.mark.django_db

TRUSTED = "http://localhost:3000"  # in CORS_ALLOWED_ORIGINS by default (DEBUG settings)
UNTRUSTED = {"HTTP_ORIGIN": "https://evil.example"}
WRITES = [
    ("post", "tasks", {"title": "new"}),
    ("put", "tasks/{id}", {"title": "replaced"}),
    ("patch", "tasks/{id}", {"title": "patched"}),
    ("patch", "tasks/{id}/complete", {}),
    ("delete", "tasks/{id}", None),
    ("put", "me", {"name": "Renamed"}),
]


@pytest.fixture
def cookie_client(user) -> APIClient:
    client = APIClient()
    client.cookies["better-auth.session_token"] = session_cookie_value(SessionFactory(user=user))
    return client


def url(user, route: str, task: Task, mounted: bool) -> str:
    route = route.format(id=task.pk)
    if mounted:
        route = f"{user.pk}/profile" if route == "me" else f"{user.pk}/{route}"
    return f"/api/{route}"


def snapshot(user) -> list[tuple]:
    rows = Task.objects.filter(user=user).order_by("pk")
    return [*rows.values_list("pk", "title", "completed", "updated_at"), user.name]


@pytest.mark.parametrize("mounted", [False, True], ids=["api", "user-mount"])
@pytest.mark.parametrize(("method", "route", "body"), WRITES)
@pytest.mark.parametrize("source", ["untrusted-origin", "untrusted-referer", "no-origin"])
def test_cookie_writes_from_elsewhere_are_refused_and_change_nothing(
    cookie_client, user, method, route, body, mounted, source
):
    task = TaskFactory(user=user, title="original")
    before = snapshot(user)
    headers = {
        "untrusted-origin": UNTRUSTED,
        "untrusted-referer": {"HTTP_REFERER": "https://evil.example/page"},
        "no-origin": {},
    }[source]
    response = getattr(cookie_client, method)(
        url(user, route, task, mounted), body, format="json", **headers
    )
    assert response.status_code == 403, response.content
    assert response.json()["detail"] == "CSRF failed: untrusted origin"
    user.refresh_from_db()
    assert snapshot(user) == before


@pytest.mark.parametrize("mounted", [False, True], ids=["api", "user-mount"])
@pytest.mark.parametrize(("method", "route", "body"), WRITES)
def test_cookie_writes_from_the_trusted_origin_succeed(
    cookie_client, user, method, route, body, mounted
):
    task = TaskFactory(user=user, title="original")
    before = snapshot(user)
    response = getattr(cookie_client, method)(
        url(user, route, task, mounted), body, format="json", HTTP_ORIGIN=TRUSTED
    )
    assert response.status_code in {200, 201, 204}, response.content
    user.refresh_from_db()
    assert snapshot(user) != before


@pytest.mark.parametrize(("method", "route", "body"), WRITES)
def test_bearer_writes_need_no_origin(user, method, route, body):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {app_token(user.id)}")
    task = TaskFactory(user=user)
    response = getattr(client, method)(
        url(user, route, task, False), body, format="json", **UNTRUSTED
    )
    assert response.status_code in {200, 201, 204}, response.content
