import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework import status

from accounts.models import User
from tasks.models import Task
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def list_url(user=None):
    return reverse("user:task-list", args=[user.pk]) if user else reverse("task-list")


def detail_url(task, user=None):
    if user:
        return reverse("user:task-detail", args=[user.pk, task.pk])
    return reverse("task-detail", args=[task.pk])


def toggle_url(task, user=None):
    if user:
        return reverse("user:task-toggle", args=[user.pk, task.pk])
    return reverse("task-toggle", args=[task.pk])


def assert_error(response, status_code, code):
    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["detail"] == body["error"]["message"]
    return body


# Both mounts serve the same viewset: every behaviour test runs on each.
MOUNTS = pytest.mark.parametrize("mounted", [False, True], ids=["api-tasks", "api-user-tasks"])


@MOUNTS
class TestList:
    def test_envelope_and_counts(self, auth_client, user, mounted):
        TaskFactory.create_batch(3, user=user)
        TaskFactory(user=user, completed=True)
        response = auth_client.get(list_url(user if mounted else None))
        assert response.status_code == status.HTTP_200_OK
        body = response.json()
        assert set(body) == {
            "tasks", "total", "completed_count", "pending_count", "limit", "offset"
        }  # fmt: skip
        assert (body["total"], body["completed_count"], body["pending_count"]) == (4, 1, 3)
        assert (body["limit"], body["offset"]) == (1000, 0)
        assert len(body["tasks"]) == 4

    def test_only_returns_own_tasks(self, auth_client, user, other_user, mounted):
        mine = TaskFactory(user=user)
        TaskFactory.create_batch(2, user=other_user)
        body = auth_client.get(list_url(user if mounted else None)).json()
        assert [t["id"] for t in body["tasks"]] == [str(mine.pk)]
        assert body["total"] == 1

    def test_task_shape(self, auth_client, user, mounted):
        task = TaskFactory(user=user, due_date=datetime.date(2026, 12, 24), tags=["a"])
        item = auth_client.get(list_url(user if mounted else None)).json()["tasks"][0]
        assert item == {
            "id": str(task.pk),
            "user_id": user.pk,
            "title": task.title,
            "description": task.description,
            "completed": False,
            "priority": task.priority,
            "category": task.category,
            "due_date": "2026-12-24",
            "tags": ["a"],
            "position": 0,
            "version": 1,
            "completed_at": None,
            "created_at": task.created_at.isoformat().replace("+00:00", "Z"),
            "updated_at": task.updated_at.isoformat().replace("+00:00", "Z"),
        }


class TestPagination:
    def test_limit_offset_and_totals_describe_the_filtered_set(self, auth_client, user):
        TaskFactory.create_batch(5, user=user, completed=True)
        TaskFactory.create_batch(3, user=user, completed=False)
        body = auth_client.get(list_url(), {"limit": 2, "offset": 1}).json()
        assert len(body["tasks"]) == 2
        assert (body["total"], body["completed_count"], body["pending_count"]) == (8, 5, 3)
        assert (body["limit"], body["offset"]) == (2, 1)

    def test_pages_cover_every_task_once(self, auth_client, user):
        TaskFactory.create_batch(7, user=user)
        seen = []
        for offset in range(0, 7, 3):
            seen += auth_client.get(list_url(), {"limit": 3, "offset": offset}).json()["tasks"]
        assert len({t["id"] for t in seen}) == 7

    def test_skip_is_an_alias_of_offset(self, auth_client, user):
        TaskFactory.create_batch(3, user=user)
        body = auth_client.get(list_url(), {"skip": 2}).json()
        assert body["offset"] == 2
        assert len(body["tasks"]) == 1
        assert body["total"] == 3

    def test_limit_is_capped_at_1000(self, auth_client, user):
        assert auth_client.get(list_url(), {"limit": 5000}).json()["limit"] == 1000

    def test_offset_past_the_end_is_an_empty_page_with_totals(self, auth_client, user):
        TaskFactory.create_batch(2, user=user)
        body = auth_client.get(list_url(), {"offset": 10}).json()
        assert body["tasks"] == []
        assert body["total"] == 2

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": "abc"},
            {"limit": 0},
            {"limit": -1},
            {"offset": -1},
            {"skip": "x"},
            {"offset": 1, "skip": "x"},
        ],  # fmt: skip
    )
    def test_invalid_pagination_is_a_400(self, auth_client, user, params):
        assert_error(auth_client.get(list_url(), params), 400, "VALIDATION_ERROR")


@MOUNTS
class TestCreate:
    def test_create_returns_task_envelope(self, auth_client, user, mounted):
        payload = {
            "title": "  Buy milk  ",
            "description": "2 liters",
            "priority": "high",
            "category": "shopping",
            "due_date": "2026-12-01",
        }
        response = auth_client.post(list_url(user if mounted else None), payload, format="json")
        assert response.status_code == status.HTTP_201_CREATED
        task = response.json()["task"]
        assert task["title"] == "Buy milk"
        assert (task["priority"], task["category"], task["due_date"]) == (
            "high", "shopping", "2026-12-01"
        )  # fmt: skip
        assert task["user_id"] == user.pk
        assert task["completed"] is False
        assert Task.objects.get(pk=task["id"]).user == user

    def test_defaults(self, auth_client, user, mounted):
        task = auth_client.post(
            list_url(user if mounted else None), {"title": "x"}, format="json"
        ).json()["task"]
        assert (task["priority"], task["category"], task["tags"]) == ("medium", "other", [])
        assert task["description"] is None
        assert task["due_date"] is None

    def test_owner_comes_from_credentials_not_body(self, auth_client, user, other_user, mounted):
        response = auth_client.post(
            list_url(user if mounted else None),
            {"title": "x", "user_id": other_user.pk, "user": other_user.pk},
            format="json",
        )
        assert response.status_code == 201
        assert Task.objects.get(pk=response.json()["task"]["id"]).user_id == user.pk
        assert not Task.objects.filter(user=other_user).exists()


class TestCreateRules:
    def test_new_tasks_go_to_the_end_of_the_list(self, auth_client, user, other_user):
        TaskFactory(user=other_user, position=50)
        first = auth_client.post(list_url(), {"title": "x"}, format="json").json()["task"]
        TaskFactory(user=user, position=7)
        TaskFactory(user=user, position=3)
        task = auth_client.post(list_url(), {"title": "x"}, format="json").json()["task"]
        assert (first["position"], task["position"]) == (0, 8)

    def test_id_is_a_uuid7(self, auth_client, user):
        task = auth_client.post(list_url(), {"title": "x"}, format="json").json()["task"]
        assert task["id"][14] == "7"

    def test_created_completed_gets_completed_at(self, auth_client, user):
        task = auth_client.post(
            list_url(), {"title": "x", "completed": True}, format="json"
        ).json()["task"]
        assert task["completed"] is True
        assert task["completed_at"] is not None

    def test_tags_are_deduplicated(self, auth_client, user):
        task = auth_client.post(
            list_url(), {"title": "x", "tags": ["a", "b", "a"]}, format="json"
        ).json()["task"]
        assert task["tags"] == ["a", "b"]

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "title"),
            ({"title": ""}, "title"),
            ({"title": "   "}, "title"),
            ({"title": "x" * 201}, "title"),
            ({"title": None}, "title"),
            ({"title": "a\x00b"}, "title"),
            ({"title": "x", "description": "x" * 5001}, "description"),
            ({"title": "x", "priority": "urgent"}, "priority"),
            ({"title": "x", "category": "fun"}, "category"),
            ({"title": "x", "due_date": "tomorrow"}, "due_date"),
            ({"title": "x", "due_date": "2026-02-30"}, "due_date"),
            ({"title": "x", "tags": "a,b"}, "tags"),
            ({"title": "x", "tags": ["x" * 51]}, "tags"),
            ({"title": "x", "tags": [str(i) for i in range(21)]}, "tags"),
            ({"title": "x", "position": -1}, "position"),
            ({"title": "x", "position": 2**31}, "position"),
            ({"title": ["x"]}, "title"),
        ],
    )
    def test_invalid_input_is_a_400_with_field_details(self, auth_client, user, payload, field):
        body = assert_error(
            auth_client.post(list_url(), payload, format="json"), 400, "VALIDATION_ERROR"
        )
        assert field in body["error"]["details"]
        assert not Task.objects.exists()

    def test_malformed_json_is_a_400(self, auth_client, user):
        response = auth_client.post(list_url(), '{"title": ', content_type="application/json")
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_json_array_body_is_a_400(self, auth_client, user):
        response = auth_client.post(list_url(), "[1, 2]", content_type="application/json")
        assert_error(response, 400, "VALIDATION_ERROR")

    def test_wrong_content_type_is_a_415(self, auth_client, user):
        response = auth_client.post(list_url(), "title=x", content_type="text/plain")
        assert_error(response, 415, "VALIDATION_ERROR")
        assert not Task.objects.exists()

    def test_oversized_body_is_a_413(self, auth_client, user):
        payload = '{"title": "x", "description": "' + "y" * 300_000 + '"}'
        response = auth_client.post(list_url(), payload, content_type="application/json")
        assert_error(response, 413, "VALIDATION_ERROR")
        assert not Task.objects.exists()

    def test_deeply_nested_json_is_a_400(self, auth_client, user):
        payload = '{"title": ' + "[" * 100_000 + "]" * 100_000 + "}"
        response = auth_client.post(list_url(), payload, content_type="application/json")
        assert response.status_code in (400, 413)

    def test_invalid_utf8_is_a_400(self, auth_client, user):
        response = auth_client.post(
            list_url(), b'{"title": "\xff\xfe"}', content_type="application/json"
        )
        assert_error(response, 400, "VALIDATION_ERROR")


@MOUNTS
class TestRetrieve:
    def test_get_returns_task_envelope(self, auth_client, user, mounted):
        task = TaskFactory(user=user)
        response = auth_client.get(detail_url(task, user if mounted else None))
        assert response.status_code == 200
        assert response.json()["task"]["id"] == str(task.pk)

    def test_another_users_task_is_404(self, auth_client, user, other_user, mounted):
        task = TaskFactory(user=other_user)
        body = assert_error(
            auth_client.get(detail_url(task, user if mounted else None)), 404, "NOT_FOUND"
        )
        assert task.title not in str(body)

    def test_non_uuid_id_is_404(self, auth_client, user, mounted):
        url = list_url(user if mounted else None).rstrip("/") + "/not-a-uuid"
        assert_error(auth_client.get(url), 404, "NOT_FOUND")


@MOUNTS
class TestUpdate:
    def test_put_with_the_frontend_form(self, auth_client, user, mounted):
        task = TaskFactory(user=user, tags=["keep"], position=3)
        payload = {
            "title": "New",
            "description": "d",
            "priority": "low",
            "category": "work",
            "due_date": "2027-01-01",
            "completed": True,
        }
        response = auth_client.put(
            detail_url(task, user if mounted else None), payload, format="json"
        )
        assert response.status_code == 200
        body = response.json()["task"]
        assert (body["title"], body["priority"], body["completed"]) == ("New", "low", True)
        assert body["completed_at"] is not None
        assert (body["tags"], body["position"]) == (["keep"], 3)  # omitted: kept

    def test_put_requires_a_title(self, auth_client, user, mounted):
        task = TaskFactory(user=user, title="Old", priority="high")
        response = auth_client.put(
            detail_url(task, user if mounted else None), {"priority": "low"}, format="json"
        )
        assert_error(response, 400, "VALIDATION_ERROR")
        task.refresh_from_db()
        assert (task.title, task.priority) == ("Old", "high")

    def test_patch_is_partial(self, auth_client, user, mounted):
        task = TaskFactory(user=user, title="Keep", priority="low")
        response = auth_client.patch(
            detail_url(task, user if mounted else None), {"priority": "high"}, format="json"
        )
        assert response.json()["task"]["title"] == "Keep"
        task.refresh_from_db()
        assert task.priority == "high"

    def test_reopening_clears_completed_at(self, auth_client, user, mounted):
        task = TaskFactory(user=user, completed=True, completed_at=timezone.now())
        body = auth_client.patch(
            detail_url(task, user if mounted else None), {"completed": False}, format="json"
        ).json()["task"]
        assert (body["completed"], body["completed_at"]) == (False, None)

    def test_completing_stamps_and_completing_again_keeps_the_stamp(
        self, auth_client, user, mounted
    ):
        task = TaskFactory(user=user, completed=False, completed_at=None)
        url = detail_url(task, user if mounted else None)
        first = auth_client.patch(url, {"completed": True}, format="json").json()["task"]
        again = auth_client.put(url, {"title": "t", "completed": True}, format="json").json()
        assert first["completed_at"] is not None
        assert (again["task"]["completed"], again["task"]["completed_at"]) == (
            True,
            first["completed_at"],
        )

    def test_updated_at_moves(self, auth_client, user, mounted):
        task = TaskFactory(user=user)
        before = task.updated_at
        auth_client.patch(
            detail_url(task, user if mounted else None), {"title": "y"}, format="json"
        )
        task.refresh_from_db()
        assert task.updated_at > before

    def test_invalid_update_changes_nothing(self, auth_client, user, mounted):
        task = TaskFactory(user=user, title="Old", priority="low")
        response = auth_client.patch(
            detail_url(task, user if mounted else None),
            {"title": "New", "priority": "bogus"},
            format="json",
        )
        assert_error(response, 400, "VALIDATION_ERROR")
        task.refresh_from_db()
        assert (task.title, task.priority) == ("Old", "low")

    @pytest.mark.parametrize("method", ["put", "patch"])
    def test_another_users_task_is_404_and_unchanged(
        self, auth_client, user, other_user, mounted, method
    ):
        task = TaskFactory(user=other_user, title="Theirs")
        response = getattr(auth_client, method)(
            detail_url(task, user if mounted else None), {"title": "Mine"}, format="json"
        )
        assert_error(response, 404, "NOT_FOUND")
        task.refresh_from_db()
        assert task.title == "Theirs"

    def test_owner_cannot_be_changed(self, auth_client, user, other_user, mounted):
        task = TaskFactory(user=user)
        auth_client.patch(
            detail_url(task, user if mounted else None), {"user_id": other_user.pk}, format="json"
        )
        task.refresh_from_db()
        assert task.user_id == user.pk


@MOUNTS
class TestDelete:
    def test_delete_is_204_empty(self, auth_client, user, mounted):
        task = TaskFactory(user=user)
        response = auth_client.delete(detail_url(task, user if mounted else None))
        assert response.status_code == 204
        assert response.content == b""
        assert not Task.objects.filter(pk=task.pk).exists()

    def test_another_users_task_is_404_and_kept(self, auth_client, user, other_user, mounted):
        task = TaskFactory(user=other_user)
        assert_error(
            auth_client.delete(detail_url(task, user if mounted else None)), 404, "NOT_FOUND"
        )
        assert Task.objects.filter(pk=task.pk).exists()

    def test_missing_or_non_uuid_is_404(self, auth_client, user, mounted):
        task = TaskFactory(user=user)
        url = detail_url(task, user if mounted else None)
        assert auth_client.delete(url).status_code == 204
        assert_error(auth_client.delete(url), 404, "NOT_FOUND")  # already gone
        assert_error(auth_client.delete(url.replace(str(task.pk), "nope")), 404, "NOT_FOUND")


@MOUNTS
class TestToggle:
    def test_toggle_without_body(self, auth_client, user, mounted):
        task = TaskFactory(user=user)
        url = toggle_url(task, user if mounted else None)
        first = auth_client.patch(url, content_type="application/json").json()["task"]
        assert (first["completed"], first["completed_at"] is not None) == (True, True)
        second = auth_client.patch(url, content_type="application/json").json()["task"]
        assert (second["completed"], second["completed_at"]) == (False, None)

    def test_returns_the_row_as_stored_with_one_timestamp(self, auth_client, user, mounted):
        task = TaskFactory(user=user)
        Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - datetime.timedelta(1))
        before = timezone.now()
        toggled = auth_client.patch(toggle_url(task, user if mounted else None)).json()["task"]
        stored = auth_client.get(detail_url(task, user if mounted else None)).json()["task"]
        assert toggled == stored
        assert toggled["completed_at"] == toggled["updated_at"]
        assert datetime.datetime.fromisoformat(toggled["updated_at"]) >= before

    @pytest.mark.parametrize("value", [True, False])
    def test_body_sets_the_value(self, auth_client, user, mounted, value):
        task = TaskFactory(user=user, completed=value)
        url = toggle_url(task, user if mounted else None)
        for _ in range(2):
            body = auth_client.patch(url, {"completed": value}, format="json").json()["task"]
            assert body["completed"] is value

    def test_invalid_body_is_400(self, auth_client, user, mounted):
        task = TaskFactory(user=user)
        response = auth_client.patch(
            toggle_url(task, user if mounted else None), {"completed": "maybe"}, format="json"
        )
        assert_error(response, 400, "VALIDATION_ERROR")
        task.refresh_from_db()
        assert task.completed is False

    def test_another_users_task_is_404_and_unchanged(self, auth_client, user, other_user, mounted):
        task = TaskFactory(user=other_user)
        response = auth_client.patch(toggle_url(task, user if mounted else None))
        assert_error(response, 404, "NOT_FOUND")
        task.refresh_from_db()
        assert task.completed is False

    def test_non_uuid_is_404(self, auth_client, user, mounted):
        url = toggle_url(TaskFactory(user=user), user if mounted else None)
        url = url.replace(url.split("/")[-2], "nope")
        assert_error(auth_client.patch(url), 404, "NOT_FOUND")


class TestStats:
    def test_stats_of_own_tasks_only(self, auth_client, user, other_user):
        yesterday = timezone.localdate() - datetime.timedelta(days=1)
        TaskFactory(user=user, priority="high", category="work", completed=True)
        TaskFactory(user=user, priority="low", category="work", due_date=yesterday)
        TaskFactory(user=other_user, priority="high", due_date=yesterday)
        body = auth_client.get(reverse("task-stats")).json()
        assert body == {
            "total_tasks": 2,
            "completed_tasks": 1,
            "pending_tasks": 1,
            "overdue_tasks": 1,
            "completion_rate": 50.0,
            "by_priority": {"low": 1, "medium": 0, "high": 1},
            "by_category": {"work": 2, "personal": 0, "shopping": 0, "health": 0, "other": 0},
        }

    def test_profile_stats_match_the_stats_route_every_time_and_day(
        self, auth_client, user, other_user, monkeypatch
    ):
        TaskFactory(user=user, priority="high", due_date=datetime.date(2027, 3, 1))
        TaskFactory(user=user, completed=True, due_date=datetime.date(2020, 1, 1))
        TaskFactory(user=user, category="health", due_date=datetime.date(2020, 1, 1))
        TaskFactory(user=other_user, due_date=datetime.date(2020, 1, 1))
        overdue = []
        for today in (timezone.localdate(), datetime.date(2027, 4, 1)):
            monkeypatch.setattr(timezone, "localdate", lambda today=today: today)
            for _ in range(2):  # the second profile runs the SQL built by the first
                stats = auth_client.get(reverse("me")).json()["stats"]
                assert stats == auth_client.get(reverse("task-stats")).json()
            overdue.append(stats["overdue_tasks"])
        assert overdue == [1, 2]
        assert stats["total_tasks"] == 3

    def test_overdue_means_pending_and_due_before_today(self, auth_client, user):
        today, day = timezone.localdate(), datetime.timedelta(days=1)
        TaskFactory(user=user, due_date=today - day)  # the one overdue task
        TaskFactory(user=user, due_date=today)
        TaskFactory(user=user, due_date=None)
        TaskFactory(user=user, due_date=None, completed=True)
        TaskFactory(user=user, due_date=today - day, completed=True)
        TaskFactory(user=user, due_date=today + day)
        for _ in range(2):  # the second profile runs the SQL built by the first
            stats = auth_client.get(reverse("me")).json()["stats"]
            assert stats == auth_client.get(reverse("task-stats")).json()
            assert (stats["total_tasks"], stats["completed_tasks"], stats["overdue_tasks"]) == (
                6, 2, 1
            )  # fmt: skip
        pending = auth_client.get(reverse("task-stats"), {"status": "pending"}).json()
        assert (pending["total_tasks"], pending["overdue_tasks"]) == (4, 1)

    def test_stats_apply_filters(self, auth_client, user):
        TaskFactory(user=user, priority="high")
        TaskFactory(user=user, priority="low")
        body = auth_client.get(reverse("task-stats"), {"priority": "high"}).json()
        assert body["total_tasks"] == 1


@pytest.mark.parametrize("mounted", [False, True], ids=["api-me", "api-user-profile"])
class TestProfile:
    def url(self, user, mounted):
        return reverse("profile", args=[user.pk]) if mounted else reverse("me")

    def test_profile_shape(self, auth_client, user, other_user, mounted):
        TaskFactory(user=user, completed=True)
        TaskFactory(user=user)
        TaskFactory(user=other_user)
        body = auth_client.get(self.url(user, mounted)).json()
        assert body["user"] == {
            "id": user.pk, "email": user.email, "name": user.name, "image": None
        }  # fmt: skip
        stats = body["stats"]
        assert (stats["total_tasks"], stats["completed_tasks"], stats["pending_tasks"]) == (
            2, 1, 1
        )  # fmt: skip
        assert set(stats) >= {"overdue_tasks", "completion_rate", "by_priority", "by_category"}

    def test_put_renames_only(self, auth_client, user, mounted):
        before = User.objects.get(pk=user.pk)
        response = auth_client.put(
            self.url(user, mounted),
            {"name": "  New Name ", "email": "evil@example.com", "id": "x"},
            format="json",
        )
        assert response.status_code == 200
        assert response.json()["user"]["name"] == "New Name"
        after = User.objects.get(pk=user.pk)
        assert (after.name, after.email, after.id) == ("New Name", before.email, before.id)
        assert after.updated_at > before.updated_at

    @pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "x" * 256}, {"name": None}])
    def test_put_invalid_name_is_400(self, auth_client, user, mounted, payload):
        assert_error(
            auth_client.put(self.url(user, mounted), payload, format="json"),
            400,
            "VALIDATION_ERROR",
        )
        assert User.objects.get(pk=user.pk).name == user.name


class TestPathUserMismatch:
    @pytest.mark.parametrize(
        ("method", "route"),
        [
            ("get", "list"),
            ("post", "list"),
            ("get", "detail"),
            ("put", "detail"),
            ("patch", "detail"),
            ("delete", "detail"),
            ("patch", "toggle"),
            ("get", "stats"),
            ("get", "profile"),
            ("put", "profile"),
        ],
    )
    def test_other_user_id_in_path_is_403(self, auth_client, user, other_user, method, route):
        theirs = TaskFactory(user=other_user)
        url = {
            "list": lambda: reverse("user:task-list", args=[other_user.pk]),
            "detail": lambda: reverse("user:task-detail", args=[other_user.pk, theirs.pk]),
            "toggle": lambda: reverse("user:task-toggle", args=[other_user.pk, theirs.pk]),
            "profile": lambda: reverse("profile", args=[other_user.pk]),
            "stats": lambda: reverse("user:task-stats", args=[other_user.pk]),
        }[route]()
        response = getattr(auth_client, method)(url, {"title": "x", "name": "x"}, format="json")
        assert_error(response, 403, "FORBIDDEN")
        theirs.refresh_from_db()
        assert theirs.title != "x"
        assert Task.objects.count() == 1


class TestErrors:
    def test_unauthenticated_is_401(self, api_client):
        response = api_client.get(list_url())
        assert_error(response, 401, "AUTH_REQUIRED")
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_unknown_api_path_is_json_404(self, auth_client):
        assert_error(auth_client.get("/api/nope/nothing/here"), 404, "NOT_FOUND")

    def test_method_not_allowed_is_405(self, auth_client, user):
        assert_error(auth_client.delete(list_url()), 405, "METHOD_NOT_ALLOWED")

    def test_trailing_slash_works(self, auth_client, user):
        assert auth_client.get(list_url() + "/").status_code == 200


def test_deleting_a_user_with_plain_sql_cascades_to_their_tasks_only(django_db_blocker):
    from django.db import connection

    doomed, survivor = UserFactory(), UserFactory()
    TaskFactory.create_batch(3, user=doomed)
    TaskFactory.create_batch(2, user=survivor)
    with connection.cursor() as cursor:
        cursor.execute('DELETE FROM "user" WHERE id = %s', [doomed.pk])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not Task.objects.filter(user_id=doomed.pk).exists()
    assert Task.objects.filter(user=survivor).count() == 2
