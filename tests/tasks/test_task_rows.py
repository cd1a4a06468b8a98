"""task_rows (the list's fast path) must serialize exactly like model instances."""

from datetime import UTC, date, datetime

import pytest

from tasks.models import Task
from tasks.serializers import TaskSerializer, task_rows
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def test_rows_serialize_exactly_like_model_instances(user):
    TaskFactory(user=user, description=None, tags=[], due_date=None)
    done = TaskFactory(user=user, tags=["a", "b"], due_date=date(2027, 1, 31))
    done.set_completed(True)
    done.save()
    # A zero fraction: isoformat() leaves it out, so the rows must too.
    TaskFactory(user=user, created_at=datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC))
    TaskFactory(user=user, created_at=datetime(2026, 5, 2, 8, 0, 0, 5, tzinfo=UTC))
    queryset = Task.objects.filter(user=user).order_by("-created_at", "-id")

    from_models = TaskSerializer(list(queryset), many=True).data
    from_rows = TaskSerializer(list(task_rows(queryset)), many=True).data

    assert from_rows == from_models
    assert [row["created_at"] for row in from_rows[-2:]] == [
        "2026-05-02T08:00:00.000005Z",
        "2026-05-01T12:00:00Z",
    ]
    assert {None, "2027-01-31"} <= {row["due_date"] for row in from_rows}


def test_rows_are_still_a_queryset_for_pagination(user):
    TaskFactory.create_batch(3, user=user, completed=True)
    rows = task_rows(Task.objects.filter(user=user))

    assert rows.count() == 3
    assert all(row.completed for row in rows[:2])
