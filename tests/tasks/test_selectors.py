"""selectors.task_get: the lookup behind every get, update and delete (REST and MCP)."""

import uuid
from datetime import date

import pytest

from tasks import selectors
from tasks.models import Task
from tasks.serializers import TaskSerializer
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_returns_the_same_task_as_the_orm(user):
    task = TaskFactory(user=user, tags=["a", "b"], due_date=date(2027, 1, 31), description=None)

    loaded = selectors.task_get(user=user, task_id=str(task.pk))

    assert isinstance(loaded, Task)
    assert loaded._state.adding is False
    expected = Task.objects.get(pk=task.pk)
    assert TaskSerializer(loaded).data == TaskSerializer(expected).data
    assert loaded.tags == ["a", "b"]


@pytest.mark.parametrize(
    "form", [str, lambda pk: pk, lambda pk: pk.hex, lambda pk: str(pk).upper()]
)
def test_accepts_every_form_of_the_id(user, form):
    task = TaskFactory(user=user)

    assert selectors.task_get(user=user, task_id=form(task.pk)).pk == task.pk


def test_another_users_task_is_missing(user):
    theirs = TaskFactory(user=UserFactory())

    with pytest.raises(Task.DoesNotExist):
        selectors.task_get(user=user, task_id=str(theirs.pk))


@pytest.mark.parametrize("task_id", ["", "not-a-uuid", "1' OR '1'='1", "0" * 33, 12, None])
def test_malformed_and_unknown_ids_are_missing(user, task_id):
    TaskFactory(user=user)

    with pytest.raises(Task.DoesNotExist):
        selectors.task_get(user=user, task_id=task_id)
    with pytest.raises(Task.DoesNotExist):
        selectors.task_get(user=user, task_id=str(uuid.uuid4()))


def test_costs_one_query(user, django_assert_num_queries):
    task = TaskFactory(user=user)

    with django_assert_num_queries(1):
        selectors.task_get(user=user, task_id=str(task.pk))
