"""Concurrent writes from separate database connections (real transactions)."""

import threading

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from tasks import services
from tasks.models import Task
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run_in_threads(count, target):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(target())
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.parametrize("toggles", [2, 50, 51])
def test_concurrent_toggles_are_never_lost(toggles):
    user = UserFactory()
    task = TaskFactory(user=user)

    def toggle():
        client = APIClient()
        client.force_authenticate(user=user)  # type: ignore[arg-type]  # DRF takes any user object
        return client.patch(reverse("task-toggle", args=[task.pk])).status_code

    assert run_in_threads(toggles, toggle) == [200] * toggles
    task.refresh_from_db()
    assert task.completed is (toggles % 2 == 1)
    assert (task.completed_at is not None) is task.completed


def test_concurrent_puts_never_leave_a_half_applied_row():
    user = UserFactory()
    task = TaskFactory(user=user)
    payloads = [
        {"title": f"v{i}", "description": f"v{i}", "priority": ["low", "high"][i % 2]}
        for i in range(10)
    ]

    def put(payload):
        client = APIClient()
        client.force_authenticate(user=user)  # type: ignore[arg-type]  # DRF takes any user object
        return client.put(reverse("task-detail", args=[task.pk]), payload, format="json")

    iterator = iter(payloads)
    lock = threading.Lock()

    def next_put():
        with lock:
            payload = next(iterator)
        return put(payload).status_code

    assert run_in_threads(len(payloads), next_put) == [200] * len(payloads)
    row = Task.objects.get(pk=task.pk)
    assert row.title == row.description
    assert row.priority == ["low", "high"][int(row.title[1:]) % 2]


def test_concurrent_put_and_delete_never_resurrect_or_fail():
    user = UserFactory()
    task = TaskFactory(user=user)
    url = reverse("task-detail", args=[task.pk])

    def request(method):
        client = APIClient()
        client.force_authenticate(user=user)  # type: ignore[arg-type]  # DRF takes any user object
        return getattr(client, method)(url, {"title": "edited"}, format="json").status_code

    methods = iter(["delete"] + ["put", "patch"] * 5)
    lock = threading.Lock()

    def next_request():
        with lock:
            method = next(methods)
        return method, request(method)

    results = run_in_threads(11, next_request)
    assert ("delete", 204) in results
    assert {status for method, status in results if method != "delete"} <= {200, 404}
    assert not Task.objects.filter(pk=task.pk).exists()


# The same races, with the interleaving forced: an edit sent before a toggle landed.
def test_an_edit_does_not_undo_a_toggle_made_since_it_was_sent():
    task = TaskFactory(completed=False)
    services.task_set_completed(user=task.user, pk=task.pk, completed=None)
    services.task_update(user=task.user, pk=task.pk, title="edited")
    row = Task.objects.get(pk=task.pk)
    assert (row.title, row.completed) == ("edited", True)
    assert row.completed_at is not None


def test_an_edit_of_a_task_deleted_since_it_was_sent_does_not_resurrect_it():
    task = TaskFactory()
    Task.objects.filter(pk=task.pk).delete()
    with pytest.raises(Task.DoesNotExist):
        services.task_update(user=task.user, pk=task.pk, title="edited")
    assert not Task.objects.filter(pk=task.pk).exists()
