"""The completion rule (Task.set_completed on an instance, Task.completion in an UPDATE)
gives the same `completed_at` both ways: every writer (REST, MCP, admin) uses one of them."""

import datetime

import pytest
from django.utils import timezone

from tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db
EARLIER = timezone.now() - datetime.timedelta(days=3)


def updated(task: Task, completed: bool | None, now: datetime.datetime, **kwargs) -> Task:
    Task.objects.filter(pk=task.pk).update(**Task.completion(completed, now, **kwargs))
    task.refresh_from_db()
    return task


@pytest.mark.parametrize("was", [False, True])
@pytest.mark.parametrize("completed", [False, True])
def test_instance_and_update_agree(was, completed):
    now = timezone.now()
    in_memory = TaskFactory.build(completed=was, completed_at=EARLIER if was else None)
    in_memory.set_completed(completed)
    in_database = updated(TaskFactory(completed=was), completed, now)
    assert in_memory.completed is in_database.completed is completed
    assert (in_memory.completed_at is None) is (in_database.completed_at is None) is not completed
    if completed:
        assert in_database.completed_at == now


@pytest.mark.parametrize("was", [False, True])
def test_none_toggles(was):
    now = timezone.now()
    task = updated(TaskFactory(completed=was), None, now)
    assert task.completed is not was
    assert task.completed_at == (None if was else now)


def test_without_restamp_a_completed_task_keeps_its_stamp():
    task = updated(
        TaskFactory(completed=True, completed_at=EARLIER), True, timezone.now(), restamp=False
    )
    assert task.completed_at == EARLIER
