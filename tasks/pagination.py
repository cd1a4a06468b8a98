"""The list envelope: one page of tasks plus totals of the whole filtered set."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db.models import Count, Max, Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from tasks.queries import TaskQuerySet
from tasks.serializers import row_seq

MAX_INT = 2**31 - 1

# What a list's totals and ETag need of the whole filtered set, in one aggregate.
SET_AGGREGATES = {
    "n_total": Count("*"),
    "n_completed": Count("completed", filter=Q(completed=True)),
    "last_change": Max("change_seq"),
}


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of tasks and the totals of the whole filtered set."""

    tasks: list[Any]  # task_rows: TaskRow dicts on PostgreSQL, named tuples elsewhere
    total: int
    completed_count: int
    limit: int
    offset: int
    # The largest `change_seq` of the filtered set: with `total`, it changes with any
    # write to the set (numbers only grow; a delete lowers the count), so the list's
    # ETag is made of them.
    last_change: int

    def envelope(self, tasks: list[Any]) -> dict[str, Any]:
        """The list body (REST and MCP alike), given the page's tasks already serialized."""
        return {
            "tasks": tasks,
            "total": self.total,
            "completed_count": self.completed_count,
            "pending_count": self.total - self.completed_count,
            "limit": self.limit,
            "offset": self.offset,
        }


class TaskPagination(LimitOffsetPagination):
    """`limit` (default and maximum 1000) and `offset` (alias `skip`).

    The frontend sends no limit and expects every task in one call, so the
    default page is the maximum. Counts cost no extra query when the whole set
    fits in the page; otherwise one aggregate counts it.
    """

    default_limit = 1000
    max_limit = 1000
    offset_alias = "skip"

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        self.request = request
        # The tasks viewset, its only user, pages task_queryset's TaskQuerySet.
        return self.paginate(cast(TaskQuerySet, queryset), request.query_params)

    def paginate(self, queryset: TaskQuerySet, params: Mapping[str, Any]) -> list[Any]:
        """The page of `queryset` that `params` ask for, as rows (task_rows); its totals
        and ETag parts in `task_page`."""
        self.limit, self.offset = self.page_bounds(params)
        # One row more than the page: when it is absent, the page holds the whole set.
        rows = queryset.rows(self.offset, self.offset + self.limit + 1)
        page = rows[: self.limit]
        if self.offset == 0 and len(rows) <= self.limit:
            self.count = len(page)
            self.completed_count = sum(1 for task in page if task.completed)
            self.last_change = max(map(row_seq, page), default=0)
        else:
            # Columns of the (user, change_seq, completed) index only, not the id:
            # PostgreSQL counts from the index alone, without visiting the table.
            counts = queryset.totals(**SET_AGGREGATES)
            self.count, self.completed_count = counts["n_total"], counts["n_completed"]
            self.last_change = counts["last_change"] or 0
        self.task_page = TaskPage(
            page, self.count, self.completed_count, self.limit, self.offset, self.last_change
        )
        return page

    def page_bounds(self, params: Mapping[str, Any]) -> tuple[int, int]:
        """(limit, offset) of `params`; a ValidationError for a bad value."""
        return self.limit_of(params), self.offset_of(params)

    def get_limit(self, request: Request) -> int:
        return self.limit_of(request.query_params)

    def get_offset(self, request: Request) -> int:
        return self.offset_of(request.query_params)

    def limit_of(self, params: Mapping[str, Any]) -> int:
        value = params.get(self.limit_query_param)
        if value in (None, ""):
            return self.default_limit
        return min(self._non_negative(self.limit_query_param, value, minimum=1), self.max_limit)

    def offset_of(self, params: Mapping[str, Any]) -> int:
        """`offset`, else `skip`; a bad value of either is a 400, even when both are sent."""
        offsets = [
            self._non_negative(param, value, minimum=0)
            for param in (self.offset_query_param, self.offset_alias)
            if (value := params.get(param)) not in (None, "")
        ]
        return offsets[0] if offsets else 0

    @staticmethod
    def _non_negative(param: str, value: Any, minimum: int) -> int:
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number < minimum or number > MAX_INT:
            raise ValidationError({param: [f"Must be an integer of at least {minimum}."]})
        return number

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response(self.task_page.envelope(data))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        integer = {"type": "integer", "minimum": 0}
        return {
            "type": "object",
            "required": ["tasks", "total", "completed_count", "pending_count", "limit", "offset"],
            "properties": {
                "tasks": schema,
                "total": {**integer, "description": "Tasks matching the filters, all pages."},
                "completed_count": {**integer, "description": "Completed among `total`."},
                "pending_count": {**integer, "description": "Not completed among `total`."},
                "limit": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
                "offset": integer,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        def parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
            return {"name": name, "required": False, "in": "query", "description": description,
                    "schema": {"type": "integer", "maximum": MAX_INT, **schema}}  # fmt: skip

        return [
            parameter(
                self.limit_query_param,
                "Tasks per page (larger values are capped).",
                {"minimum": 1, "default": self.default_limit},
            ),  # fmt: skip
            parameter(self.offset_query_param, "Tasks to skip.", {"minimum": 0, "default": 0}),
            parameter(self.offset_alias, "Alias of `offset`.", {"minimum": 0}),
        ]
