"""Every read of tasks that runs SQL compiled once (config.sql), and the cache of list SQL.

Building and compiling an ORM query was most of the CPU of a read of one task or of a
list page; these are compiled once with placeholders (ANY_OWNER for the user's id,
ANY_TASK_ID for a task's id), and each run binds the real values.

A list's SQL is compiled once per TaskFilter.sql_key (its filter `cleaned_data`, and
the day with `overdue`, which compares with today): it must depend on nothing else.
With CHECK_CACHED_SQL (the test suite sets it), every reuse compiles the query again
and fails loudly if it differs.
"""

import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Self

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.db.models import QuerySet

from accounts.models import User
from config.sql import Compiled, compile_aggregate, compile_for, compile_required, fetch_instance
from tasks.models import Task
from tasks.serializers import task_row, task_rows

# Stand for the owner's id and a task's id in SQL compiled once; bound on each run.
# (A list's SQL is compiled from its first owner's own query instead: see TaskQuerySet.)
ANY_OWNER = f"owner-{secrets.token_hex(16)}"
ANY_TASK_ID = uuid.uuid4()

CHECK_CACHED_SQL = False


def task_db_id(task_id: Any) -> Any:
    """`task_id` as the database stores ids; Task.DoesNotExist when it is not a UUID."""
    try:
        return Task._meta.pk.get_db_prep_value(task_id, connections[Task.objects.db])
    except DjangoValidationError:
        raise Task.DoesNotExist from None


def fetch_task(sql: str, params: Sequence[Any]) -> Task:
    """The task `sql` yields (see fetch_instance); Task.DoesNotExist when it yields none."""
    task = fetch_instance(Task, sql, params)
    if task is None:
        raise Task.DoesNotExist
    return task


@cache
def task_get_sql() -> Compiled:
    """task_queryset's own query for one task by id (see fetch_instance for why not a
    RawQuerySet): bind the owner, then the task id (task_db_id)."""
    one_task = task_queryset(user=User(pk=ANY_OWNER)).filter(pk=ANY_TASK_ID).order_by()
    return compile_required(one_task, ANY_OWNER, task_db_id(ANY_TASK_ID))


@cache
def last_position_sql() -> Compiled:
    """The largest `position` of the owner's tasks (the (user, position) index read
    backwards: MAX(position)'s answer); bind the owner."""
    last = task_queryset(user=User(pk=ANY_OWNER)).order_by("-position").values_list("position")
    return compile_required(last[:1], ANY_OWNER)


class CompiledCache:
    """Compiled SQL by key, for the `size` keys used last.

    `compile` must give the same SQL for the same key; with CHECK_CACHED_SQL a reuse
    compiles again and raises AssertionError when it does not (bound to `owner`: a
    list's SQL is compiled from its first owner's query, see TaskQuerySet).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, Compiled] = OrderedDict()
        self.misses = 0
        # gthread workers share the cache between threads: another thread's insert may
        # evict a key between its lookup and move_to_end (a KeyError, a 500).
        self.lock = threading.Lock()

    def get(
        self, key: Hashable, compile: Callable[[], Compiled | None], owner: Any
    ) -> Compiled | None:
        with self.lock:
            compiled = self.entries.get(key)
            if compiled is not None:
                self.entries.move_to_end(key)
            else:
                self.misses += 1
        if compiled is None:  # None (an ambiguous owner) is not kept: the next may do
            compiled = compile()  # outside the lock: it builds and compiles a query
            if compiled is not None:
                with self.lock:
                    self.entries[key] = compiled
                    if len(self.entries) > self.size:
                        self.entries.popitem(last=False)
            return compiled
        if CHECK_CACHED_SQL:
            again = compile()
            if again is not None and _bound(again, owner) != _bound(compiled, owner):
                raise AssertionError(
                    f"The SQL compiled for {key} changed: it depends on more than its key."
                )
        return compiled

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.misses = 0


def _bound(compiled: Compiled, owner: Any) -> tuple[str, list[Any]]:
    # A JSON parameter is a wrapper (psycopg's Jsonb) that compares by identity.
    return compiled.sql, [getattr(value, "obj", value) for value in compiled.bind(owner)]


# A list's rows, and its aggregates, per TaskQuerySet.sql_key.
list_sql = CompiledCache(size=256)
list_aggregate_sql = CompiledCache(size=256)


if TYPE_CHECKING:

    class _QuerySet(QuerySet[Task]):
        """The private QuerySet API TaskQuerySet extends, which django-stubs leaves out."""

        _db: str | None
        _deferred_filter: tuple[bool, tuple[Any, ...], dict[str, Any]] | None

        def _clone(self) -> Self: ...
        def _chain(self) -> Self: ...

else:
    _QuerySet = QuerySet


class TaskQuerySet(_QuerySet):
    """Tasks of one owner (task_queryset).

    A list's (TaskFilter.filter_queryset) also knows what its SQL depends on, its
    `sql_key`: its rows and aggregates then run SQL compiled once per key, bound to
    each owner. Its filters are applied only when its query is needed (a new key, or
    any other use of the queryset), as Django defers a related manager's filter:
    building them was a large share of a list's CPU.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner: Any = None
        self.sql_key: Hashable | None = None
        self.prepare = True  # see filtered_once
        self._pending: Callable[[QuerySet[Task]], QuerySet[Task]] | None = None

    @property
    def query(self) -> Any:
        query = QuerySet.query.fget(self)  # type: ignore[attr-defined]  # the owner's filter
        if self._pending is not None:
            pending, self._pending = self._pending, None
            query = self._query = pending(QuerySet(self.model, query.chain(), self._db)).query
        return query

    @query.setter
    def query(self, value: Any) -> None:
        QuerySet.query.fset(self, value)  # type: ignore[attr-defined]

    def _clone(self) -> "TaskQuerySet":
        if self._pending is not None or self._deferred_filter is None:
            clone = super()._clone()  # the owner's filter applied first, then the pending
        else:
            # Django applies a deferred filter before cloning: the owner's is carried
            # over instead (one key then always compiles to the same SQL: see above).
            deferred, self._deferred_filter = self._deferred_filter, None
            try:
                clone = super()._clone()
            finally:
                self._deferred_filter = deferred
            clone._deferred_filter = deferred
        clone.owner, clone.sql_key, clone.prepare = self.owner, self.sql_key, self.prepare
        return clone

    def filtered_once(
        self,
        key: Hashable,
        filters: Callable[[QuerySet[Task]], QuerySet[Task]],
        *,
        prepare: bool = True,
    ) -> "TaskQuerySet":
        """This queryset with `filters` applied, which give the same SQL for every
        owner and `key` (the SQL is compiled once per key); `prepare=False` where the
        best plan depends on a value (see prepared_cursor)."""
        clone = self._chain()
        clone.sql_key, clone._pending, clone.prepare = key, filters, prepare
        return clone

    def _cache(self) -> bool:
        return self.sql_key is not None and connections[self.db].vendor == "postgresql"

    def rows(self, start: int, stop: int) -> list[Any]:
        """task_rows(self)[start:stop]."""
        compiled = None
        if self._cache():
            compiled = list_sql.get(
                (self.sql_key, "rows"), lambda: compile_for(task_rows(self), self.owner), self.owner
            )
        if compiled is None:
            return list(task_rows(self)[start:stop])
        rows = compiled.fetchall(
            self.owner,
            suffix=" LIMIT %s OFFSET %s",
            extra=[stop - start, start],
            prepare=self.prepare,
        )
        return [task_row(row) for row in rows]

    def totals(self, **aggregates: Any) -> dict[str, Any]:
        """self.aggregate(**aggregates)."""
        compiled = None
        if self._cache():
            key = (self.sql_key, tuple(aggregates))
            compiled = list_aggregate_sql.get(
                key, lambda: compile_aggregate(self, aggregates, self.owner), self.owner
            )
        if compiled is None:
            return self.aggregate(**aggregates)
        [row] = compiled.fetchall(self.owner, prepare=self.prepare)
        return dict(zip(aggregates, row, strict=True))


def task_queryset(*, user: User) -> TaskQuerySet:
    """Every task `user` may see: their own, and nobody else's."""
    queryset = TaskQuerySet(Task)
    queryset.owner = user.pk
    # Built when the query is needed, as a related manager's filter (Django's
    # `_defer_next_filter`, without its clone): a list compiled once needs only the
    # owner's id.
    queryset._deferred_filter = (False, (), {"user": user})
    return queryset
