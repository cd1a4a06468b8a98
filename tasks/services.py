"""Writes and reads of tasks that carry rules; the viewset (and MCP tools) call these."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from tasks.models import Task


def task_create(*, user: User, **fields: Any) -> Task:
    """Create a task for `user`; without a position it goes to the end of their list."""
    if fields.get("position") is None:
        last = Task.objects.filter(user=user).aggregate(last=Max("position"))["last"]
        fields["position"] = 0 if last is None else last + 1
    task = Task(user=user, **fields)
    if task.completed:
        task.set_completed(True)
    task.save(force_insert=True)
    return task


def task_update(*, task: Task, **fields: Any) -> Task:
    """Apply validated fields; completing or reopening stamps or clears `completed_at`."""
    completed = fields.pop("completed", None)
    for name, value in fields.items():
        setattr(task, name, value)
    if completed is not None and completed != task.completed:
        task.set_completed(completed)
    task.save()
    return task


def task_set_completed(*, queryset: QuerySet[Task], pk: Any, completed: bool | None) -> Task:
    """Toggle (or set) `completed` under a row lock, so concurrent toggles never collide.

    `queryset` is the caller's already-scoped queryset: another user's task is
    Task.DoesNotExist, exactly like a missing or malformed id.
    """
    with transaction.atomic():
        try:
            task = queryset.select_for_update().get(pk=pk)
        except DjangoValidationError:  # not a UUID
            raise Task.DoesNotExist from None
        task.set_completed(not task.completed if completed is None else completed)
        task.save(update_fields=["completed", "completed_at", "updated_at"])
    return task


def task_stats(*, queryset: QuerySet[Task]) -> dict[str, Any]:
    """Counts of a (scoped, possibly filtered) task set, in one aggregate query."""
    counts = queryset.order_by().aggregate(
        n_total=Count("pk"),
        n_completed=Count("pk", filter=Q(completed=True)),
        n_overdue=Count("pk", filter=Q(completed=False, due_date__lt=timezone.localdate())),
        **{f"priority_{p}": Count("pk", filter=Q(priority=p)) for p in Task.Priority.values},
        **{f"category_{c}": Count("pk", filter=Q(category=c)) for c in Task.Category.values},
    )
    total, completed = counts["n_total"], counts["n_completed"]
    return {
        "total_tasks": total,
        "completed_tasks": completed,
        "pending_tasks": total - completed,
        "overdue_tasks": counts["n_overdue"],
        "completion_rate": round(100 * completed / total, 1) if total else 0.0,
        "by_priority": {p: counts[f"priority_{p}"] for p in Task.Priority.values},
        "by_category": {c: counts[f"category_{c}"] for c in Task.Category.values},
    }


def user_rename(*, user: User, name: str) -> User:
    """Change a Better Auth user's display name (and `updatedAt`), nothing else."""
    user.name = name
    user.updated_at = timezone.now()
    user.save(update_fields=["name", "updated_at"])
    return user
