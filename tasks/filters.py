"""Query-string filtering and ordering of a user's tasks (django-filter + DRF backends)."""

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import django_filters
from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Case, F, IntegerField, OrderBy, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from tasks.models import Task

BOOLEAN_CHOICES = [("true", "true"), ("false", "false")]
SQLITE_HAS_TAG = 'EXISTS (SELECT 1 FROM json_each("task"."tags") WHERE json_each.value = %s)'


class AllChoiceFilter(django_filters.ChoiceFilter):
    """A choice filter where `all` (what the frontend's selects say) means no filter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["choices"] = [("all", "all"), *kwargs["choices"]]
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs if value == "all" else super().filter(qs, value)


class TaskFilter(django_filters.FilterSet):
    """Filters of GET .../tasks; an invalid value is a 400, never silently ignored."""

    status = django_filters.ChoiceFilter(
        choices=[("all", "all"), ("pending", "pending"), ("completed", "completed")],
        method="filter_status",
        help_text="`pending` or `completed`; `all` (the default) does not filter.",
    )
    completed = django_filters.ChoiceFilter(
        choices=BOOLEAN_CHOICES, method="filter_completed", help_text="`true` or `false`."
    )
    priority = AllChoiceFilter(choices=Task.Priority.choices)
    category = AllChoiceFilter(choices=Task.Category.choices)
    tags = django_filters.CharFilter(
        method="filter_tags", help_text="Comma-separated; a task matches when it has all of them."
    )
    due_before = django_filters.DateFilter(
        field_name="due_date", lookup_expr="lte", help_text="Due on or before this date."
    )
    due_after = django_filters.DateFilter(
        field_name="due_date", lookup_expr="gte", help_text="Due on or after this date."
    )
    overdue = django_filters.ChoiceFilter(
        choices=BOOLEAN_CHOICES,
        method="filter_overdue",
        help_text="`true`: open tasks due before today; `false`: all others.",
    )

    class Meta:
        model = Task
        fields: list[str] = []

    _form_class: ClassVar[type]  # set by get_form_class

    def get_form_class(self) -> type:
        # django-filter builds a new form class (every field, every choice label) per
        # request; the filters never change, so build it once per FilterSet class.
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            type(self)._form_class = form_class
        return form_class

    def filter_status(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        if value == "all":
            return queryset
        return queryset.filter(completed=value == "completed")

    def filter_completed(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return queryset.filter(completed=value == "true")

    def filter_tags(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        tags = filter_tags_of(value)
        if not tags:
            return queryset
        if connection.vendor == "postgresql":
            return queryset.filter(tags__contains=tags)  # jsonb @>, served by a GIN index
        for tag in tags:  # SQLite (the embedded default) has no JSON containment
            queryset = queryset.filter(RawSQL(SQLITE_HAS_TAG, [tag], output_field=BooleanField()))
        return queryset

    def filter_overdue(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        overdue = Q(completed=False, due_date__lt=timezone.localdate())
        return queryset.filter(overdue) if value == "true" else queryset.exclude(overdue)


# Bounds on a list's parameters, checked before any query is built: the work of one
# request never grows with its input (a search cost two LIKE clauses per word, unbounded).
# A task has at most Task.MAX_TAGS tags of Task.TAG_MAX_LENGTH characters, so a filter
# beyond those could match nothing anyway.
MAX_FILTER_TAGS = Task.MAX_TAGS
MAX_FILTER_TAG_LENGTH = Task.TAG_MAX_LENGTH


def filter_tags_of(value: str) -> list[str]:
    """The distinct tags of a `tags=a,b` filter; a ValidationError beyond the bounds."""
    if len(value) > MAX_FILTER_TAGS * (MAX_FILTER_TAG_LENGTH + 2):
        raise ValidationError({"tags": [f"At most {MAX_FILTER_TAGS} tags."]})
    tags = list(dict.fromkeys(tag.strip() for tag in value.split(",") if tag.strip()))
    if len(tags) > MAX_FILTER_TAGS:
        raise ValidationError({"tags": [f"At most {MAX_FILTER_TAGS} tags."]})
    if any(len(tag) > MAX_FILTER_TAG_LENGTH for tag in tags):
        raise ValidationError({"tags": [f"A tag has at most {MAX_FILTER_TAG_LENGTH} characters."]})
    return tags


def search_limits() -> tuple[int, int, int]:
    """(words, characters per word, characters in all) a search may have."""
    words, length = settings.SEARCH_MAX_WORDS, settings.SEARCH_MAX_WORD_LENGTH
    return words, length, words * (length + 3)  # room for quotes and separators


class TaskSearchFilter(filters.SearchFilter):
    search_description = (
        "Case-insensitive text in the title or description; several words must all match. "
        "At most SEARCH_MAX_WORDS words (default 10) of SEARCH_MAX_WORD_LENGTH characters "
        "(default 100)."
    )

    def get_search_terms(self, request: Request) -> list[str]:
        max_words, max_length, max_total = search_limits()
        raw = request.query_params.get(self.search_param, "")
        if len(raw) > max_total:
            raise ValidationError(
                {self.search_param: [f"At most {max_total} characters ({max_words} words)."]}
            )
        terms = super().get_search_terms(request)
        if any("\x00" in term for term in terms):
            raise ValidationError({self.search_param: ["Null characters are not allowed."]})
        if len(terms) > max_words:
            raise ValidationError({self.search_param: [f"At most {max_words} words."]})
        if any(len(term) > max_length for term in terms):
            raise ValidationError(
                {self.search_param: [f"A word has at most {max_length} characters."]}
            )
        return terms


PRIORITY_RANK = Case(
    When(priority=Task.Priority.HIGH, then=Value(3)),
    When(priority=Task.Priority.MEDIUM, then=Value(2)),
    default=Value(1),
    output_field=IntegerField(),
)


MAX_ORDERING_LENGTH = 200


class TaskOrderingFilter(filters.OrderingFilter):
    """DRF's `ordering=-created_at`, plus the frontend's `sort_by=` and `order=asc|desc`.

    Unlike DRF's filter, unknown fields are a 400. `priority` sorts by meaning
    (high > medium > low) and tasks without a due date always sort last.
    """

    sort_param = "sort_by"
    order_param = "order"
    # Direction used when `sort_by` is given without `order`.
    natural_order = {
        "created_at": "desc",
        "updated_at": "desc",
        "priority": "desc",
        "due_date": "asc",
        "title": "asc",
        "position": "asc",
    }

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> list[str]:
        sort_by = request.query_params.get(self.sort_param, "").strip()
        order = request.query_params.get(self.order_param, "").strip().lower()
        terms = request.query_params.get(self.ordering_param, "").strip()
        if order and order not in ("asc", "desc"):
            raise ValidationError({self.order_param: ["Must be `asc` or `desc`."]})
        if sort_by and terms:
            raise ValidationError({self.sort_param: ["Use either `sort_by` or `ordering`."]})
        if terms:
            if len(terms) > MAX_ORDERING_LENGTH:  # every field once, with `-` and commas, fits
                raise ValidationError({self.ordering_param: ["At most 200 characters."]})
            fields = [term.strip() for term in terms.split(",")]
            if len(fields) > len(view.ordering_fields):
                limit = len(view.ordering_fields)
                raise ValidationError({self.ordering_param: [f"At most {limit} fields."]})
            self._check_fields(self.ordering_param, [f.removeprefix("-") for f in fields], view)
            if not re.fullmatch(self._ordering_pattern(view), terms):  # the schema's own rule
                raise ValidationError(
                    {self.ordering_param: ["Comma-separated fields, `-` for descending."]}
                )
            return fields
        if sort_by or order:
            sort_by = sort_by or "created_at"
            self._check_fields(self.sort_param, [sort_by], view)
            direction = order or self.natural_order[sort_by]
            return [f"-{sort_by}" if direction == "desc" else sort_by]
        return list(view.ordering)

    def _check_fields(self, param: str, fields: list[str], view: Any) -> None:
        unknown = [field for field in fields if field not in view.ordering_fields]
        if unknown:
            allowed = ", ".join(view.ordering_fields)
            raise ValidationError(
                {param: [f"Unknown sort field '{unknown[0]}'. Allowed: {allowed}."]}
            )

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        expressions = [
            self._expression(term) for term in self.get_ordering(request, queryset, view)
        ]
        # The id (UUIDv7, time-ordered) makes every order total, so pages never overlap.
        return queryset.order_by(*expressions, "-created_at", "-id")

    @staticmethod
    def _expression(term: str) -> OrderBy:
        descending = term.startswith("-")
        field = term.removeprefix("-")
        value = PRIORITY_RANK if field == "priority" else F(field)
        return OrderBy(
            value, descending=descending, nulls_last=True if field == "due_date" else None
        )

    @staticmethod
    def _ordering_pattern(view: Any) -> str:
        """`ordering` as the schema publishes it: 1 to len(fields) terms, spaces around."""
        fields = list(view.ordering_fields)
        term = f" *-?({'|'.join(fields)}) *"
        return f"{term}(,{term}){{0,{len(fields) - 1}}}"

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        fields = list(view.ordering_fields)
        return [
            {
                "name": self.sort_param,
                "required": False,
                "in": "query",
                "description": "Sort field (the frontend's name for `ordering`).",
                "schema": {"type": "string", "enum": fields},
            },
            {
                "name": self.order_param,
                "required": False,
                "in": "query",
                "description": "Direction for `sort_by`; its natural direction when omitted.",
                "schema": {"type": "string", "enum": ["asc", "desc"]},
            },
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "DRF-style ordering: comma-separated fields, `-` for descending, "
                f"from {', '.join(fields)}. Not together with `sort_by`.",
                "schema": {
                    "type": "string",
                    "pattern": f"^{self._ordering_pattern(view)}$",
                    "maxLength": MAX_ORDERING_LENGTH,
                },
            },
        ]


class TaskListOptions:
    """What a task list accepts, read by the filter backends as their `view`.

    TaskViewSet inherits these and tasks.selectors passes this class itself, so the
    REST list and the MCP tools filter, search and sort with one definition.
    """

    filter_backends: Sequence[type[Any]] = [
        DjangoFilterBackend,
        TaskSearchFilter,
        TaskOrderingFilter,
    ]
    filterset_class = TaskFilter
    search_fields = ["title", "description"]
    ordering_fields = ["created_at", "updated_at", "due_date", "priority", "title", "position"]
    ordering = ["-created_at"]
