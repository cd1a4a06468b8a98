from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import CharField, Func, QuerySet
from django.db.models.functions import Cast
from django.db.models.query import ValuesListIterable
from rest_framework import serializers

from accounts.models import User
from tasks.models import Task

TASK_FIELDS = [
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "priority",
    "category",
    "due_date",
    "tags",
    "position",
    "completed_at",
    "created_at",
    "updated_at",
]


def _iso(value: datetime | str | None) -> str | None:
    """DRF's DateTimeField output: ISO 8601, UTC written as `Z`.

    A string is a timestamp PostgreSQL already wrote this way (`task_rows`), which
    always has six fraction digits; isoformat() leaves out a zero fraction.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value[:-8] + "Z" if value.endswith(".000000Z") else value
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


TaskRow = namedtuple("TaskRow", TASK_FIELDS)


class _UtcIso(Func):
    """A timestamptz written by PostgreSQL the way `_iso` writes it."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    output_field = CharField()


class _TaskRowIterable(ValuesListIterable):
    def __iter__(self) -> Iterator[TaskRow]:
        return map(TaskRow._make, super().__iter__())


def task_rows(queryset: QuerySet[Task]) -> QuerySet:
    """The queryset's tasks as read-only TaskRow tuples, for TaskSerializer to list.

    No model instances, and on PostgreSQL the id and timestamps come as text already
    in the API's format: Django's timestamptz loader parses each value in Python,
    which was a third of a 1000-task list's cost (bench: 10.1 -> 3.6 ms of CPU to
    fetch 1000 rows). Still a queryset, so pagination can slice and count it.
    """
    if connections[queryset.db].vendor != "postgresql":
        return queryset.values_list(*TASK_FIELDS, named=True)
    text = {"id": Cast("id", CharField())} | {
        name: _UtcIso(name) for name in ("completed_at", "created_at", "updated_at")
    }
    rows = queryset.values_list(*(text.get(name, name) for name in TASK_FIELDS))
    rows._iterable_class = _TaskRowIterable  # Django's own hook for named rows; stable since 2.0
    return rows


class TaskSerializer(serializers.ModelSerializer):
    """A task as the frontend reads and writes it; the owner never comes from input."""

    user_id = serializers.CharField(read_only=True)
    description = serializers.CharField(
        max_length=Task.DESCRIPTION_MAX_LENGTH, allow_null=True, allow_blank=True, required=False
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=Task.TAG_MAX_LENGTH),
        max_length=Task.MAX_TAGS,
        required=False,
        help_text=f"Up to {Task.MAX_TAGS} short labels; duplicates are dropped.",
    )
    position = serializers.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        required=False,
        help_text="Manual ordering; defaults to the end of the user's list.",
    )

    class Meta:
        model = Task
        fields = TASK_FIELDS
        read_only_fields = ["id", "completed_at", "created_at", "updated_at"]

    def validate_tags(self, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))

    def to_representation(self, task: Task) -> dict[str, Any]:
        # Same output as the declared fields, written out: a 1000-task list is the
        # frontend's default call and field-by-field rendering dominated its cost.
        return {
            "id": str(task.id),
            "user_id": task.user_id,
            "title": task.title,
            "description": task.description,
            "completed": task.completed,
            "priority": task.priority,
            "category": task.category,
            "due_date": task.due_date.isoformat() if task.due_date else None,
            "tags": task.tags,
            "position": task.position,
            "completed_at": _iso(task.completed_at),
            "created_at": _iso(task.created_at),
            "updated_at": _iso(task.updated_at),
        }


class TaskCompleteSerializer(serializers.Serializer):
    """Body of PATCH .../complete: empty to toggle, or the value to set."""

    completed = serializers.BooleanField(
        required=False, help_text="Set this value instead of toggling."
    )


class TaskStatsSerializer(serializers.Serializer):
    total_tasks = serializers.IntegerField()
    completed_tasks = serializers.IntegerField()
    pending_tasks = serializers.IntegerField()
    overdue_tasks = serializers.IntegerField(help_text="Open tasks due before today.")
    completion_rate = serializers.FloatField(help_text="Percent of tasks completed, 0-100.")
    by_priority = serializers.DictField(child=serializers.IntegerField())
    by_category = serializers.DictField(child=serializers.IntegerField())


class UserSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=255)

    class Meta:
        model = User
        fields = ["id", "email", "name", "image"]
        read_only_fields = ["id", "email", "image"]


class ProfileSerializer(serializers.Serializer):
    user = UserSerializer()
    stats = TaskStatsSerializer()


class TaskEnvelopeSerializer(serializers.Serializer):
    """`{"task": Task}`: the response of every single-task route."""

    task = TaskSerializer()
