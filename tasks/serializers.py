from datetime import datetime
from typing import Any

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


def _iso(value: datetime | None) -> str | None:
    """DRF's DateTimeField output: ISO 8601, UTC written as `Z`."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
