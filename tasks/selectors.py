"""Reads of a user's tasks, shared by the REST viewset and the MCP tools.

Scoping lives in `task_queryset` only (tasks.queries). Lists run the REST list's own
TaskFilter and TaskPagination over plain query parameters, so every API filters,
searches, sorts, paginates and rejects bad values identically.
"""

import base64
import binascii
import hashlib
import re
import struct
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.db import connections, transaction
from django.http import QueryDict
from django.utils import timezone
from django_filters.utils import translate_validation
from rest_framework.exceptions import ValidationError

from accounts.models import User
from config.errors import ResyncRequired
from tasks.filters import TaskFilter
from tasks.models import Task, TaskTombstone
from tasks.pagination import SET_AGGREGATES, TaskPage, TaskPagination
from tasks.queries import (
    TaskQuerySet,
    fetch_task,
    last_position_sql,
    task_db_id,
    task_get_sql,
    task_queryset,
)
from tasks.serializers import row_seq, task_rows


def task_get(*, user: User, task_id: Any) -> Task:
    """One of `user`'s tasks: the query behind every GET of one task.

    Raises Task.DoesNotExist alike for a missing id, a malformed one and another
    user's: ids never leak. Its SQL is task_queryset's own, compiled once.
    """
    compiled = task_get_sql()
    return fetch_task(compiled.sql, compiled.bind(user.pk, task_db_id(task_id)))


def task_filter(*, user: User, params: Mapping[str, Any]) -> TaskQuerySet:
    """`user`'s tasks filtered, searched and ordered by list query parameters.

    Raises rest_framework's ValidationError for an invalid value or an unknown sort field,
    as DjangoFilterBackend does for the REST list.
    """
    data = params if isinstance(params, dict) else dict(params)  # a QueryDict is one
    filters = TaskFilter(data, queryset=task_queryset(user=user))
    if not filters.is_valid():
        # The stub says a dict: it is rest_framework's ValidationError.
        raise translate_validation(filters.errors)  # type: ignore[misc]
    return cast(TaskQuerySet, filters.qs)  # TaskFilter.filter_queryset's own (filtered_once)


def task_list(*, user: User, params: Mapping[str, Any]) -> TaskPage:
    """The page of `user`'s tasks that GET .../tasks?<params> returns, with its totals."""
    paginator = TaskPagination()
    paginator.paginate(task_filter(user=user, params=params), params)
    return paginator.task_page


def task_count_and_last_position(*, user: User, count_up_to: int) -> tuple[int, int | None]:
    """How many tasks `user` owns, counted up to `count_up_to` at most (so it costs at
    most that many index entries), and the largest `position` among them (None without
    tasks): one query."""
    last = last_position_sql()
    sql = (
        f"SELECT (SELECT count(*) FROM (SELECT 1 FROM {_TASK_TABLE} WHERE user_id = %s "
        f"LIMIT %s) AS owned), ({last.sql})"
    )
    with connections[last.using].cursor() as cursor:
        cursor.execute(sql, [user.pk, max(count_up_to, 0), *last.bind(user.pk)])
        owned, position = cursor.fetchone()
    return owned, position


_TASK_TABLE = f'"{Task._meta.db_table}"'


# -- Conditional list requests -------------------------------------------------------

# Part of every list ETag: change it when the list's representation changes.
LIST_ETAG_SALT = "tasks-list-1"


def list_etag(*, user: User, params: Mapping[str, Any], total: int, last_change: int) -> str:
    """The strong ETag of the list page GET .../tasks?<params> returns.

    Made of what decides that page and its counts: the owner, every parameter (page
    included), today (`overdue`), and the filtered set's size and largest
    `change_seq`. Any write to a task of the set gives it a new, larger number, and
    a task leaving the set (deleted, or no longer matching) lowers the count unless
    another one, newly written, came in; so the ETag changes with any change of the
    page or its counts, and with nothing else.
    """
    key = repr((user.pk, _params_key(params), timezone.localdate(), total, last_change))
    digest = hashlib.blake2b(f"{LIST_ETAG_SALT}|{key}".encode(), digest_size=16).hexdigest()
    return f'"{digest}"'


def task_list_etag(*, user: User, queryset: TaskQuerySet, params: Mapping[str, Any]) -> str:
    """list_etag of GET .../tasks?<params> (`queryset`: its filtered set) without
    building the list: one aggregate over the filtered set (index-only for the
    frontend's unfiltered list).

    Raises rest_framework's ValidationError for invalid page parameters, as the list does.
    """
    TaskPagination().page_bounds(params)  # validate
    counts = queryset.totals(**ETAG_AGGREGATES)
    total, last_change = counts["n_total"], counts["last_change"] or 0
    return list_etag(user=user, params=params, total=total, last_change=last_change)


ETAG_AGGREGATES = {name: SET_AGGREGATES[name] for name in ("n_total", "last_change")}


def _params_key(params: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Query parameters as a sorted, hashable key (a QueryDict's repeated values too)."""
    if isinstance(params, QueryDict):
        items = ((name, tuple(params.getlist(name))) for name in params)
    else:
        items = ((name, (str(value),)) for name, value in params.items())
    return tuple(sorted(items))


# -- The changes feed ------------------------------------------------------------------


CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a client is in its changes feed: every change numbered up to `seq` is
    applied, and no tombstone it needs is older than `issued` (Unix seconds, less the
    length of a write transaction). Clients see it as an opaque string."""

    seq: int
    issued: int

    _FORMAT = struct.Struct(">QQ")
    _MAX = 2**63 - 1  # a bigint

    def encode(self) -> str:
        raw = self._FORMAT.pack(self.seq, self.issued)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """Any 22 base64url characters decode: a made-up cursor only finds nothing (or
        is too old); anything else is a 400."""
        try:
            if not CURSOR_PATTERN.fullmatch(text):
                raise ValueError(text)
            raw = base64.urlsafe_b64decode(text + "==")
            seq, issued = cls._FORMAT.unpack(raw)
        except (binascii.Error, struct.error, ValueError):
            raise ValidationError({"since": ["Not a cursor this API issued."]}) from None
        return cls(min(seq, cls._MAX), min(issued, cls._MAX))


@dataclass(frozen=True, slots=True)
class Changes:
    """One page of a user's changes feed."""

    tasks: list[Any]  # task_rows, in the order they were written
    deleted: list[str]  # ids of tasks deleted since the cursor
    cursor: str
    has_more: bool


def task_changes(*, user: User, params: Mapping[str, str]) -> Changes:
    """The user's tasks written since the cursor `since`, the ids deleted since, and the
    next cursor; at most `limit` (default and maximum 1000) of them, oldest first.

    Without `since`, every task (and no tombstone): the first sync. Both reads run in
    one snapshot, and a user's changes commit in the order of their numbers (see
    migration 0006), so the next cursor never skips a change, even one that commits
    late. The cost grows with the changes, not the list: index scans from the cursor.
    Raises ResyncRequired (410) for a cursor older than TaskTombstone.RETENTION.
    """
    limit = TaskPagination().limit_of(params)
    since_text = params.get("since") or None
    now = int(time.time())
    if since_text is None:
        since = Cursor(0, now)
    else:
        since = Cursor.decode(since_text)
        if since.issued < now - TaskTombstone.RETENTION.total_seconds():
            raise ResyncRequired()
    connection = connections[Task.objects.db]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=connection.alias):
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as sql_cursor:  # both reads in one snapshot
                sql_cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        written = task_queryset(user=user).filter(change_seq__gt=since.seq)
        rows = list(task_rows(written.order_by("change_seq"))[: limit + 1])
        deleted: list[tuple[int, uuid.UUID]] = []
        if since_text is not None:
            tombstones = TaskTombstone.objects.filter(user=user, seq__gt=since.seq)
            deleted = list(tombstones.order_by("seq").values_list("seq", "task_id")[: limit + 1])
    changes = sorted(
        [(row_seq(row), row, None) for row in rows] + [(seq, None, str(i)) for seq, i in deleted],
        key=lambda change: change[0],
    )
    has_more = len(changes) > limit
    changes = changes[:limit]
    last = changes[-1][0] if changes else since.seq
    # A partial page keeps the time it started from: older tombstones may lie ahead.
    cursor = Cursor(last, since.issued if has_more else now)
    return Changes(
        tasks=[row for _, row, _ in changes if row is not None],
        deleted=[task_id for _, _, task_id in changes if task_id is not None],
        cursor=cursor.encode(),
        has_more=has_more,
    )
