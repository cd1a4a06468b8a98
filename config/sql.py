"""Running SQL that Django compiled once, as the ORM would run it per call."""

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, NamedTuple, TypeVar, cast

from django.db import connections, models
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet
from django.db.models.sql import UpdateQuery

M = TypeVar("M", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]


def fetch_instance(model: type[M], sql: str, params: Sequence[Any]) -> M | None:
    """The first row of `sql` as a `model` instance, or None.

    `sql` yields every concrete column in field order: the model's own default query
    compiled once by its queryset, or an UPDATE with `returning(model)`. Each call
    then costs a query and `Model.from_db`, without RawQuerySet's per-call column
    mapping.
    """
    alias = model._default_manager.db
    connection = connections[alias]
    with prepared_cursor(alias) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, expression, converters in _converters(model, alias):
        for convert in converters:
            values[index] = convert(values[index], expression, connection)
    return model.from_db(alias, _attnames(model), values)


def prepared_cursor(alias: str) -> CursorWrapper:
    """A cursor for a statement that requests run again and again, with its values as
    parameters: prepared by the server where the backend can (config.postgresql)."""
    connection = connections[alias]
    prepared = getattr(connection, "prepared_cursor", None)
    return prepared() if prepared is not None else connection.cursor()


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
    """A queryset's SQL with parameters left to bind on each run."""

    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]  # per placeholder, the index in `params` of the value to bind
    using: str  # the database alias it was compiled for

    def bind(self, *values: Any, extra: Sequence[Any] = ()) -> list[Any]:
        """The parameters with `values` in the placeholders' places, then `extra`."""
        params = list(self.params)
        for slot, value in zip(self.slots, values, strict=True):
            params[slot] = value
        return [*params, *extra]

    def fetchall(
        self, *values: Any, suffix: str = "", extra: Sequence[Any] = (), prepare: bool = True
    ) -> list[tuple]:
        """The rows of the SQL (plus `suffix`, with `extra` parameters) with `values` bound;
        `prepare`: by a prepared_cursor (not where the plan depends on a value)."""
        cursor = prepared_cursor(self.using) if prepare else connections[self.using].cursor()
        with cursor:
            cursor.execute(self.sql + suffix, self.bind(*values, extra=extra))
            return cursor.fetchall()


def compile_for(queryset: QuerySet, *placeholders: Any) -> Compiled | None:
    """`queryset`'s SQL once, to run again with other values in the placeholders' places.

    None when a placeholder is not exactly one of the parameters: then there is no
    telling which one to replace, and the caller builds its query each time.
    Placeholders are compared with the parameters as the ORM prepared them for the
    database (a UUID is text on SQLite).
    """
    sql, params = queryset.query.sql_with_params()
    return _compiled(sql, params, placeholders, queryset.db)


def compile_required(queryset: QuerySet, *placeholders: Any) -> Compiled:
    """compile_for where every placeholder must be a parameter: AssertionError if not."""
    sql, params = queryset.query.sql_with_params()
    return _required(sql, params, placeholders, queryset.db)


def compile_update(queryset: QuerySet, values: dict[str, Any], *placeholders: Any) -> Compiled:
    """`queryset.update(**values)` as SQL, with compile_required's placeholders (if any).

    It then runs in one statement with RETURNING (see `returning`), which
    QuerySet.update cannot do.
    """
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    return _required(sql, params, placeholders, queryset.db)


def compile_aggregate(
    queryset: QuerySet, aggregates: dict[str, Any], *placeholders: Any
) -> Compiled | None:
    """`queryset.aggregate(**aggregates)` as SQL (one row), with compile_for's placeholders.

    QuerySet.aggregate runs its query at once; this only builds it, to run it again.
    """
    query = queryset.query.chain()
    query.clear_ordering(force=True)
    query.clear_select_clause()
    for alias, aggregate in aggregates.items():
        query.add_annotation(aggregate, alias)
    sql, params = query.get_compiler(queryset.db).as_sql()
    return _compiled(sql, params, placeholders, queryset.db)


@cache
def returning(model: type[models.Model]) -> str:
    """` RETURNING` every concrete column in field order: a row for fetch_instance."""
    quote = connections[model._default_manager.db].ops.quote_name
    return " RETURNING " + ", ".join(
        quote(cast(str, field.column)) for field in model._meta.concrete_fields
    )


def _compiled(
    sql: str, params: Sequence[Any], placeholders: Sequence[Any], using: str
) -> Compiled | None:
    slots = []
    for placeholder in placeholders:
        found = [index for index, value in enumerate(params) if value == placeholder]
        if len(found) != 1:
            return None
        slots.append(found[0])
    return Compiled(sql, tuple(params), tuple(slots), using)


def _required(sql: str, params: Sequence[Any], placeholders: Sequence[Any], using: str) -> Compiled:
    compiled = _compiled(sql, params, placeholders, using)
    if compiled is None:
        raise AssertionError(f"a placeholder is not one of the parameters of {sql}: {params}")
    return compiled
