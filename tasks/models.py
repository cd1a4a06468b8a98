from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.utils import timezone
from uuid6 import uuid7

from accounts.models import User


class Task(models.Model):
    """One todo item of one Better Auth user."""

    class Priority(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"

    class Category(models.TextChoices):
        WORK = "work"
        PERSONAL = "personal"
        SHOPPING = "shopping"
        HEALTH = "health"
        OTHER = "other"

    TITLE_MAX_LENGTH = 200
    DESCRIPTION_MAX_LENGTH = 5000
    TAG_MAX_LENGTH = 50
    MAX_TAGS = 20
    MAX_POSITION = 2**31 - 1  # PostgreSQL integer

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # ON DELETE CASCADE is also set in the database (migration 0002): Better Auth
    # deletes users with plain SQL, where Django's on_delete never runs.
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    description = models.TextField(max_length=DESCRIPTION_MAX_LENGTH, null=True, blank=True)
    completed = models.BooleanField(default=False)
    priority = models.CharField(max_length=6, choices=Priority, default=Priority.MEDIUM)
    category = models.CharField(max_length=8, choices=Category, default=Category.OTHER)
    due_date = models.DateField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    position = models.IntegerField(default=0)
    # Bumped by every write (the UPDATE sets version + 1; the database triggers of
    # migration 0006 bump it for any other writer, the admin's saves included).
    version = models.BigIntegerField(default=1, db_default=1, editable=False)
    MAX_VERSION = 2**63 - 1  # a bigint: a larger If-Match version matches no task
    # The task's place in the changes feed: on every insert and update the triggers of
    # migration 0006 stamp the next value of one sequence, taken under a per-user lock
    # held to commit, so a user's changes become visible in the order of their numbers.
    change_seq = models.BigIntegerField(default=0, db_default=0, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "task"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="task_user_created_idx"),
            models.Index(fields=["user", "due_date"], name="task_user_due_idx"),
            models.Index(fields=["user", "position"], name="task_user_position_idx"),
            # The stats (services._stats_rows): index-only, in GROUP BY order. Its prefix
            # serves the `completed` filters that task_user_completed_idx used to serve.
            models.Index(
                fields=["user", "completed", "priority", "category", "due_date"],
                name="task_user_stats_idx",
            ),
            # The changes feed, and the counts and ETag of a list: index-only scans.
            models.Index(
                fields=["user", "change_seq", "completed"], name="task_user_change_seq_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(priority__in=["low", "medium", "high"]),
                name="task_priority_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    category__in=["work", "personal", "shopping", "health", "other"]
                ),
                name="task_category_valid",
            ),
            models.CheckConstraint(condition=~models.Q(title=""), name="task_title_not_empty"),
        ]

    def __str__(self) -> str:
        return self.title

    # The completion rule, the only place it is written: completing stamps
    # `completed_at`, reopening clears it. set_completed applies it to one instance (a
    # create, the admin's form); completion() to rows in the database (REST, MCP, the
    # admin's actions), so a toggle of many rows stays one UPDATE.

    def set_completed(self, completed: bool) -> None:
        """Apply the completion rule to this instance (saved by the caller)."""
        self.completed = completed
        self.completed_at = timezone.now() if completed else None

    @staticmethod
    def completion(
        completed: bool | None, now: datetime, *, restamp: bool = True
    ) -> dict[str, Any]:
        """The completion rule as the values of an UPDATE; `None` toggles each row.

        Without `restamp`, a row that already has that value keeps its `completed_at`.
        """
        new = ~models.Q(completed=True) if completed is None else models.Value(completed)
        stamp = models.Case(models.When(new, then=models.Value(now)), default=None)
        if not restamp:
            keep = models.When(completed=completed, then=models.F("completed_at"))
            stamp = models.Case(keep, default=stamp)
        return {"completed": new, "completed_at": stamp}


class TaskTombstone(models.Model):
    """A deleted task, for the changes feed; written by a database trigger (migration 0006).

    Kept RETENTION (then purged, see services.purge_tombstones); a feed cursor older
    than that gets 410 Gone. No foreign key to the user: Better Auth deletes users
    with plain SQL, and the trigger skips the tasks that such a delete cascades to.
    """

    RETENTION = timedelta(days=30)

    task_id = models.UUIDField(primary_key=True)
    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    seq = models.BigIntegerField()
    deleted_at = models.DateTimeField()

    class Meta:
        db_table = "task_tombstone"
        indexes = [
            models.Index(fields=["user", "seq"], name="task_tombstone_user_seq_idx"),
            models.Index(fields=["deleted_at"], name="task_tombstone_deleted_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} (deleted)"


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an `Idempotency-Key` header, replayed for 24 h.

    Keys are per user. `fingerprint` identifies the request body, so the same key
    with another body is a conflict rather than a replay.
    """

    TTL = timedelta(hours=24)
    KEY_MAX_LENGTH = 255

    # ON DELETE CASCADE in the database too (migration 0003), like Task.user.
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of the request, hex
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "task_idempotency_key"
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.user_id})"
