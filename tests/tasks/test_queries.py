"""Query counts per endpoint (force-authenticated: auth itself costs one more query)."""

import pytest
from django.urls import reverse

from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("size", [1, 50])
def test_list_costs_one_query_whatever_the_size(auth_client, user, size, django_assert_num_queries):
    TaskFactory.create_batch(size, user=user)
    with django_assert_num_queries(1):
        response = auth_client.get(reverse("task-list"))
    assert response.status_code == 200
    assert len(response.json()["tasks"]) == size


@pytest.mark.parametrize("size", [11, 60])
def test_a_partial_page_adds_one_count_query(auth_client, user, size, django_assert_num_queries):
    TaskFactory.create_batch(size, user=user, title="alpha")  # every task matches the search
    with django_assert_num_queries(2):
        response = auth_client.get(reverse("task-list"), {"limit": 10, "search": "a"})
    assert response.status_code == 200
    body = response.json()
    assert (body["limit"], len(body["tasks"]), body["total"]) == (10, 10, size)


@pytest.mark.parametrize("quota", [0, 10_000])
def test_create_is_one_insert_returning_its_position(
    auth_client, user, django_assert_num_queries, settings, quota
):
    settings.TASK_QUOTA_PER_USER = quota  # the INSERT checks it (migration 0007)
    TaskFactory(user=user, position=7)
    with django_assert_num_queries(1) as captured:  # the trigger appends under the lock
        response = auth_client.post(reverse("task-list"), {"title": "x"}, format="json")
    assert response.status_code == 201
    assert response.json()["task"]["position"] == 8
    assert captured.captured_queries[0]["sql"].startswith("INSERT")
    assert ("task_quota_allows" in captured.captured_queries[0]["sql"]) == bool(quota)


def test_retrieve_costs_one_query(auth_client, user, django_assert_num_queries):
    task = TaskFactory(user=user)
    with django_assert_num_queries(1):
        response = auth_client.get(reverse("task-detail", args=[task.pk]))
    assert response.status_code == 200
    assert response.json()["task"]["id"] == str(task.pk)


def test_update_is_one_update_returning_the_row(auth_client, user, django_assert_num_queries):
    task = TaskFactory(user=user)
    with django_assert_num_queries(1) as captured:
        response = auth_client.put(
            reverse("task-detail", args=[task.pk]), {"title": "y"}, format="json"
        )
    assert response.status_code == 200
    assert response.json()["task"]["title"] == "y"
    assert captured.captured_queries[0]["sql"].startswith("UPDATE")


def test_an_empty_patch_reads_the_task_and_writes_nothing(
    auth_client, user, django_assert_num_queries
):
    task = TaskFactory(user=user)
    with django_assert_num_queries(1) as captured:
        response = auth_client.patch(reverse("task-detail", args=[task.pk]), {}, format="json")
    assert response.status_code == 200
    assert response.json()["task"]["updated_at"] == task.updated_at.isoformat().replace(
        "+00:00", "Z"
    )
    assert captured.captured_queries[0]["sql"].startswith("SELECT")


def test_delete_costs_one_query(auth_client, user, django_assert_num_queries):
    task = TaskFactory(user=user)
    with django_assert_num_queries(1) as captured:
        assert auth_client.delete(reverse("task-detail", args=[task.pk])).status_code == 204
    assert captured.captured_queries[0]["sql"].startswith("DELETE")


def test_toggle_is_one_update_returning_the_row(auth_client, user, django_assert_num_queries):
    task = TaskFactory(user=user)
    with django_assert_num_queries(1) as captured:
        response = auth_client.patch(reverse("task-toggle", args=[task.pk]))
    assert response.status_code == 200
    assert response.json()["task"]["completed"] is True
    sql = captured.captured_queries[0]["sql"]
    assert sql.startswith("UPDATE")
    assert "RETURNING" in sql


def test_stats_and_profile_cost_one_aggregate(auth_client, user, django_assert_num_queries):
    TaskFactory.create_batch(5, user=user)
    with django_assert_num_queries(1):
        stats = auth_client.get(reverse("task-stats"))
    assert (stats.status_code, stats.json()["total_tasks"]) == (200, 5)
    with django_assert_num_queries(1):
        profile = auth_client.get(reverse("me"))
    assert (profile.status_code, profile.json()["stats"]["total_tasks"]) == (200, 5)


@pytest.mark.parametrize("size", [1, 50])
def test_real_jwt_adds_one_query_for_the_user(jwt_client, user, size, django_assert_num_queries):
    TaskFactory.create_batch(size, user=user)
    jwt_client.get(reverse("task-list"))  # warm the key cache
    with django_assert_num_queries(2):  # the user, the page
        response = jwt_client.get(reverse("task-list"))
    assert response.status_code == 200
    assert len(response.json()["tasks"]) == size


def test_an_update_built_once_per_set_of_fields_binds_each_calls_values(user, other_user):
    """task_update's SQL is built once per set of fields: each call's values and owner."""
    from datetime import date

    from tasks import services

    mine, theirs = TaskFactory(user=user), TaskFactory(user=other_user)
    for task, title, due, tags in ((mine, "a", date(2030, 1, 2), ["x"]), (theirs, "b", None, [])):
        services.task_update(
            user=task.user, pk=task.pk, title=title, due_date=due, tags=tags, completed=True
        )
        task.refresh_from_db()
        assert (task.title, task.due_date, task.tags, task.completed) == (title, due, tags, True)
        assert task.completed_at is not None
    with pytest.raises(services.Task.DoesNotExist):  # another user's task, same SQL
        services.task_update(user=user, pk=theirs.pk, title="c", due_date=None, tags=[])
    services.task_update(user=user, pk=mine.pk, description=None, completed=False)
    mine.refresh_from_db()
    assert (mine.title, mine.description, mine.completed, mine.completed_at) == (
        "a",
        None,
        False,
        None,
    )
