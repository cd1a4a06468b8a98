"""Concurrent writes from separate database connections (real transactions)."""

import threading

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

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


@pytest.mark.parametrize("toggles", [2, 51])
def test_concurrent_toggles_are_never_lost(toggles):
    user = UserFactory()
    task = TaskFactory(user=user)

    def toggle():
        client = APIClient()
        client.force_authenticate(user=user)
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
        client.force_authenticate(user=user)
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
