"""Reads of a user's tasks, shared by the REST viewset and the MCP tools.

Scoping lives in `task_queryset` only. Lists run the REST list's own filter
backends and paginator over plain query parameters, so every API filters,
searches, sorts, paginates and rejects bad values identically.
"""

import base64
import binascii
import hashlib
import re
import secrets
import struct
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache, cached_property, lru_cache
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from accounts.models import User
from config.errors import ResyncRequired
from config.sql import Compiled, compile_aggregate, compile_for, compile_required, fetch_instance
from tasks.filters import TaskListOptions
from tasks.models import Task, TaskTombstone
from tasks.pagination import SET_AGGREGATES, TaskPage, TaskPagination
from tasks.serializers import TaskRow, row_seq, task_row, task_rows


def task_queryset(*, user: User) -> QuerySet[Task]:
    """Every task `user` may see: their own, and nobody else's."""
    return Task.objects.filter(user=user)


def task_get(*, user: User, task_id: Any) -> Task:
    """One of `user`'s tasks: the query behind every GET of one task.

    Raises Task.DoesNotExist alike for a missing id, a malformed one and another
    user's: ids never leak. The SQL is task_queryset's own, built once: the ORM
    would build and compile it again on every call (see fetch_instance for why not a
    RawQuerySet).
    """
    compiled = _task_get_sql()
    return fetch_task(compiled.sql, compiled.bind(user.pk, task_db_id(task_id)))


def fetch_task(sql: str, params: Sequence[Any]) -> Task:
    """The task `sql` yields (see fetch_instance); Task.DoesNotExist when it yields none."""
    task = fetch_instance(Task, sql, params)
    if task is None:
        raise Task.DoesNotExist
    return task


def task_db_id(task_id: Any) -> Any:
    """`task_id` as the database stores ids; Task.DoesNotExist when it is not a UUID."""
    try:
        return Task._meta.pk.get_db_prep_value(task_id, connections[Task.objects.db])
    except DjangoValidationError:
        raise Task.DoesNotExist from None


# Stand for the user and a task id in SQL built once.
OWNER = f"owner-{secrets.token_hex(16)}"
TASK_ID = uuid.uuid4()


@cache
def _task_get_sql() -> Compiled:
    one_task = task_queryset(user=User(pk=OWNER)).filter(pk=TASK_ID).order_by()
    return compile_required(one_task, OWNER, task_db_id(TASK_ID))


def task_filter(*, queryset: QuerySet[Task], params: Mapping[str, str]) -> QuerySet[Task]:
    """`queryset` filtered, searched and ordered by list query parameters.

    Raises rest_framework's ValidationError for an invalid value or an unknown sort field.
    """
    return _filter(queryset, _query_request(params))


def task_list(*, user: User, params: Mapping[str, str]) -> TaskPage:
    """The page of `user`'s tasks that GET .../tasks?<params> returns, with its totals."""
    request = _query_request(params)
    paginator = TaskPagination()
    # Rows, not model instances: a list only reads, and building up to a thousand
    # Task objects cost more than serializing them (see task_rows).
    paginator.paginate_queryset(TaskListRows(user, request), request)
    return paginator.task_page


def task_count_and_last_position(*, user: User, count_up_to: int) -> tuple[int, int | None]:
    """How many tasks `user` owns, counted up to `count_up_to` at most (so it costs at
    most that many index entries), and the largest `position` among them (None without
    tasks): one query."""
    last = _last_position_sql()
    sql = (
        f"SELECT (SELECT count(*) FROM (SELECT 1 FROM {_TASK_TABLE} WHERE user_id = %s "
        f"LIMIT %s) AS owned), ({last.sql})"
    )
    with connections[last.using].cursor() as cursor:
        cursor.execute(sql, [user.pk, max(count_up_to, 0), *last.bind(user.pk)])
        owned, position = cursor.fetchone()
    return owned, position


_TASK_TABLE = f'"{Task._meta.db_table}"'


@cache
def _last_position_sql() -> Compiled:
    # The (user, position) index read backwards: the same answer as MAX(position).
    last = task_queryset(user=User(pk=OWNER)).order_by("-position").values_list("position")[:1]
    return compile_required(last, OWNER)


# The pagination parameters: the paginator reads them, the filter backends never do.
_PAGE_PARAMS = frozenset(
    {
        TaskPagination.limit_query_param,
        TaskPagination.offset_query_param,
        TaskPagination.offset_alias,
    }
)


class TaskListRows:
    """`task_rows` of `user`'s tasks filtered by `request`, as TaskPagination slices and
    counts them.

    On PostgreSQL a page runs SQL built once per worker for each set of filter, search
    and sort parameters (and day: `overdue` compares with today), with the owner and
    the page bound as parameters: building and compiling the ORM query was most of a
    list's CPU. Anything else, counts included,
    builds the query as before.
    """

    def __init__(self, user: User, request: Request) -> None:
        self.user, self.request = user, request

    @cached_property
    def queryset(self) -> QuerySet:
        return task_rows(_filter(task_queryset(user=self.user), self.request))

    def aggregate(self, **aggregates: Any) -> dict[str, Any]:
        return self.queryset.aggregate(**aggregates)

    def __getitem__(self, page: slice) -> list[TaskRow]:
        compiled = None
        if connections[Task.objects.db].vendor == "postgresql":
            key = _params_key(self.request.query_params, without=_PAGE_PARAMS)
            compiled = _list_sql(key, timezone.localdate())
        if compiled is None:
            return list(self.queryset[page])
        rows = compiled.fetchall(
            self.user.pk, suffix=" LIMIT %s OFFSET %s", extra=[page.stop - page.start, page.start]
        )
        return [task_row(row) for row in rows]


@lru_cache(maxsize=256)
def _list_sql(params: tuple[tuple[str, tuple[str, ...]], ...], today: date) -> Compiled | None:
    """A list's SQL for these parameters, unpaged, the owner to bind.

    None (see compile_for): that list is built by the ORM each time. Invalid
    parameters raise, and are not cached.
    """
    rows = task_rows(
        _filter(task_queryset(user=User(pk=OWNER)), _query_request(_query_dict(params)))
    )
    return compile_for(rows, OWNER)


def _filter(queryset: QuerySet[Task], request: Request) -> QuerySet[Task]:
    for backend in TaskListOptions.filter_backends:
        queryset = backend().filter_queryset(request, queryset, TaskListOptions)
    return queryset


def _query_request(params: Mapping[str, str]) -> Request:
    """A GET request carrying `params`: all that filter backends and paginators read."""
    if not isinstance(params, QueryDict):
        query = QueryDict(mutable=True)
        query.update(params)
        params = query
    http_request = HttpRequest()
    http_request.method = "GET"
    http_request.GET = params  # type: ignore[assignment]  # stubs: immutable QueryDicts only
    request = Request(http_request)
    request.parser_context = None  # type: ignore[assignment]  # it parses no body; its dict held the request (a cycle)
    return request


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


def task_list_etag(*, user: User, params: Mapping[str, Any]) -> str:
    """list_etag of GET .../tasks?<params> without building the list: one aggregate
    over the filtered set (index-only for the frontend's unfiltered list).

    Raises rest_framework's ValidationError for invalid parameters, as the list does.
    """
    request = _query_request(params)
    filters = _params_key(request.query_params, without=_PAGE_PARAMS)
    TaskPagination().get_limit(request), TaskPagination().get_offset(request)  # validate
    compiled = _etag_sql(filters, timezone.localdate())
    if compiled is None:
        rows = [_filter(task_queryset(user=user), request).aggregate(**_ETAG_AGGREGATES)]
        total, last_change = rows[0]["n_total"], rows[0]["last_change"]
    else:
        [(total, last_change)] = compiled.fetchall(user.pk)
    return list_etag(user=user, params=params, total=total, last_change=last_change or 0)


_ETAG_AGGREGATES = {name: SET_AGGREGATES[name] for name in ("n_total", "last_change")}


@lru_cache(maxsize=256)
def _etag_sql(params: tuple[tuple[str, tuple[str, ...]], ...], today: date) -> Compiled | None:
    filtered = _filter(task_queryset(user=User(pk=OWNER)), _query_request(_query_dict(params)))
    return compile_aggregate(filtered, _ETAG_AGGREGATES, OWNER)


def _params_key(
    params: Mapping[str, Any], without: frozenset[str] = frozenset()
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Query parameters as a sorted, hashable key (a QueryDict's repeated values too)."""
    if isinstance(params, QueryDict):
        items = ((name, tuple(params.getlist(name))) for name in params)
    else:
        items = ((name, (str(value),)) for name, value in params.items())
    return tuple(sorted(item for item in items if item[0] not in without))


def _query_dict(params: tuple[tuple[str, tuple[str, ...]], ...]) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, values in params:
        query.setlist(name, list(values))
    return query


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
    request = _query_request(params)
    limit = TaskPagination().get_limit(request)
    since_text = request.query_params.get("since") or None
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
