"""Oversized and malformed request bodies on every write route: a 4xx with the error
shape, and nothing written."""

import json
from typing import Any

import pytest
from django.urls import reverse

from accounts.models import User
from tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

WRITE_ROUTES = [
    ("post", "list"),
    ("post", "user-list"),
    ("put", "detail"),
    ("patch", "detail"),
    ("put", "user-detail"),
    ("patch", "user-detail"),
    ("patch", "toggle"),
    ("patch", "user-toggle"),
    ("put", "me"),
    ("put", "profile"),
]


@pytest.fixture
def task(user):
    return TaskFactory(user=user, title="Original", description="kept", tags=["a"])


@pytest.fixture
def url_for(user, task):
    def url(route: str) -> str:
        return {
            "list": lambda: reverse("task-list"),
            "user-list": lambda: reverse("user:task-list", args=[user.pk]),
            "detail": lambda: reverse("task-detail", args=[task.pk]),
            "user-detail": lambda: reverse("user:task-detail", args=[user.pk, task.pk]),
            "toggle": lambda: reverse("task-toggle", args=[task.pk]),
            "user-toggle": lambda: reverse("user:task-toggle", args=[user.pk, task.pk]),
            "me": lambda: reverse("me"),
            "profile": lambda: reverse("profile", args=[user.pk]),
        }[route]()

    return url


@pytest.fixture
def unchanged(user, task):
    """Asserts, after the test body, that no task and no user row changed."""
    tasks_before = list(Task.objects.order_by("pk").values())
    user_before = User.objects.filter(pk=user.pk).values().get()
    yield
    assert list(Task.objects.order_by("pk").values()) == tasks_before
    assert User.objects.filter(pk=user.pk).values().get() == user_before


def assert_error(response, status_code):
    assert response.status_code == status_code, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["detail"] == body["error"]["message"]
    assert "Traceback" not in response.content.decode()
    return body


def send(client, method, url, body, content_type="application/json"):
    return client.generic(method.upper(), url, body, content_type=content_type)


ROUTES = pytest.mark.parametrize(("method", "route"), WRITE_ROUTES)


@ROUTES
@pytest.mark.usefixtures("unchanged")
class TestEveryWriteRoute:
    def test_body_over_one_megabyte_is_413(self, auth_client, url_for, method, route):
        body = json.dumps({"title": "x", "name": "x", "description": "y" * 1_100_000})
        body = assert_error(send(auth_client, method, url_for(route), body), 413)
        assert body["error"]["code"] == "VALIDATION_ERROR"

    @pytest.mark.parametrize(
        "body",
        ["[" * 50_000 + "]" * 50_000, '{"title": ' + "{" * 20_000 + "}" * 20_000 + "}",
         '{"a":' * 20_000 + "1" + "}" * 20_000],
        ids=["array", "in-field", "objects"],
    )  # fmt: skip
    def test_deeply_nested_json_is_400(self, auth_client, url_for, method, route, body):
        assert_error(send(auth_client, method, url_for(route), body), 400)

    @pytest.mark.parametrize(
        "body",
        [b'{"title": "\xff\xfe", "name": "\xc3("}', b"\xef\xbb\xbf{}",
         b'{"title": "\xed\xa0\x80"}'],
        ids=["invalid-bytes", "utf8-bom", "encoded-surrogate"],
    )  # fmt: skip
    def test_invalid_utf8_is_400(self, auth_client, url_for, method, route, body):
        assert_error(send(auth_client, method, url_for(route), body), 400)

    @pytest.mark.parametrize(
        "body",
        ['{"title": ', "   ", "{'title': 'x'}", '{"title": "x",}', "NaN", '{"title": Infinity}',
         '{"title": "a\x00b", "name": "a\x00b"}', "\x00"],
        ids=["truncated", "blank", "single-quotes", "trailing-comma", "nan",
             "infinity", "raw-nul", "only-nul"],
    )  # fmt: skip
    def test_malformed_json_is_400(self, auth_client, url_for, method, route, body):
        assert_error(send(auth_client, method, url_for(route), body), 400)

    @pytest.mark.parametrize("body", ["[]", '["title"]', '"title"', "1", "true", "null"])
    def test_json_that_is_not_an_object_is_400(self, auth_client, url_for, method, route, body):
        assert_error(send(auth_client, method, url_for(route), body), 400)

    @pytest.mark.parametrize(
        "content_type",
        ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
         "application/xml", "application/jsonx", "text/json", ""],
    )  # fmt: skip
    def test_wrong_content_type_is_415(self, auth_client, url_for, method, route, content_type):
        body = '{"title": "x", "name": "x", "completed": true}'
        response = send(auth_client, method, url_for(route), body, content_type)
        assert assert_error(response, 415)["error"]["code"] == "VALIDATION_ERROR"

    def test_nul_escapes_in_text_are_400(self, auth_client, url_for, method, route):
        body = {"title": "a\x00b", "name": "a\x00b", "description": "\x00", "completed": "x"}
        assert_error(send(auth_client, method, url_for(route), json.dumps(body)), 400)


# Without a body, PATCH is a toggle (the frontend's call) or an empty partial update.
@pytest.mark.parametrize(("method", "route"), [r for r in WRITE_ROUTES if r[0] != "patch"])
@pytest.mark.usefixtures("unchanged")
def test_no_body_is_400_where_a_field_is_required(auth_client, url_for, method, route):
    assert_error(send(auth_client, method, url_for(route), ""), 400)


def test_empty_patch_writes_nothing(auth_client, url_for, task):
    response = send(auth_client, "patch", url_for("detail"), "{}")
    assert response.status_code == 200
    assert Task.objects.get(pk=task.pk).updated_at == task.updated_at


# Every writable field, with values of the wrong JSON type (or an impossible value).
TASK_FIELD_WRONG_VALUES: dict[str, list[Any]] = {
    "title": [12, 1.5, True, None, [], ["x"], {}, {"x": "y"}, "", " ", "x" * 201, "\x00",
              "\ud800"],
    "description": [12, True, [], {}, "x" * 5001, "a\x00"],
    "completed": ["true", "yes", 1, 0, None, [], {}, "x"],
    "priority": [1, True, None, [], {}, "HIGH", "urgent", "", "high\x00"],
    "category": [1, True, None, [], {}, "Work", "fun", ""],
    "due_date": [1, True, [], {}, "tomorrow", "2026-02-30", "2026-13-01", "20261201",
                 "2026-12-01T00:00:00", "0000-01-01", "\x00"],
    "tags": ["a,b", 1, True, {}, {"a": 1}, [1], [None], [[]], [{}], ["x" * 51],
             [str(i) for i in range(21)], ["a\x00"]],
    "position": ["5", 5.5, 1.0, True, None, [], {}, -1, 2**31, 10**30, "1e3"],
}  # fmt: skip
TASK_CASES = [
    (field, value) for field, values in TASK_FIELD_WRONG_VALUES.items() for value in values
]


@pytest.mark.usefixtures("unchanged")
class TestWrongTypes:
    @pytest.mark.parametrize(("field", "value"), TASK_CASES)
    @pytest.mark.parametrize(("method", "route"), [("post", "list"), ("put", "detail"),
                                                   ("patch", "user-detail")])  # fmt: skip
    def test_task_field(self, auth_client, url_for, method, route, field, value):
        payload = json.dumps({"title": "Valid", field: value})  # ASCII: "\ud800" stays escaped
        response = send(auth_client, method, url_for(route), payload)
        assert field in assert_error(response, 400)["error"]["details"]

    @pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}, "toggle"])
    def test_toggle_body(self, auth_client, url_for, value):
        response = send(auth_client, "patch", url_for("toggle"), json.dumps({"completed": value}))
        assert "completed" in assert_error(response, 400)["error"]["details"]

    @pytest.mark.parametrize("value", [12, True, None, [], {}, "", "x" * 256, "a\x00", "\udfff"])
    def test_profile_name(self, auth_client, url_for, value):
        response = send(auth_client, "put", url_for("me"), json.dumps({"name": value}))
        assert "name" in assert_error(response, 400)["error"]["details"]


class TestUnknownFields:
    """Unknown and read-only fields are ignored (documented), never written."""

    def test_create_ignores_unknown_and_read_only_fields(self, auth_client, user, other_user):
        payload = {
            "title": "Mine",
            "id": "00000000-0000-7000-8000-000000000000",
            "user_id": other_user.pk,
            "user": other_user.pk,
            "completed_at": "2000-01-01T00:00:00Z",
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
            "version": 99,
            "owner": other_user.pk,
            "is_admin": True,
            "__proto__": {"x": 1},
        }
        response = auth_client.post(reverse("task-list"), payload, format="json")
        assert response.status_code == 201, response.content
        task = Task.objects.get()
        assert str(task.pk) != payload["id"]
        assert task.user_id == user.pk
        assert task.completed_at is None
        assert task.created_at.year > 2000
        assert task.version == 1
        assert set(response.json()["task"]) == {
            "id", "user_id", "title", "description", "completed", "priority", "category",
            "due_date", "tags", "position", "version", "completed_at", "created_at", "updated_at",
        }  # fmt: skip

    def test_profile_ignores_everything_but_name(self, auth_client, user):
        payload = {"name": "New", "email": "x@example.com", "id": "other", "image": "http://x"}
        assert auth_client.put(reverse("me"), payload, format="json").status_code == 200
        row = User.objects.get(pk=user.pk)
        assert (row.name, row.email, row.image) == ("New", user.email, user.image)


def test_a_new_task_after_the_largest_position_does_not_overflow(auth_client, user):
    TaskFactory(user=user, position=Task.MAX_POSITION)
    response = auth_client.post(reverse("task-list"), {"title": "x"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["task"]["position"] == Task.MAX_POSITION
