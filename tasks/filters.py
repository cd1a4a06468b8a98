"""Query-string filtering, search and ordering of a user's tasks: one django-filter FilterSet.

Every parameter is a form field, so `TaskFilter(params).is_valid()` is the one check of
a list's parameters (REST and MCP alike) and `cleaned_data` what its SQL depends on.
"""

import re
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, cast

import django_filters
from django import forms
from django.conf import settings
from django.db import connection, models
from django.db.models import BooleanField, Case, F, IntegerField, OrderBy, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter
from rest_framework.filters import search_smart_split

from tasks.models import Task
from tasks.queries import TaskQuerySet

BOOLEAN_CHOICES = [("true", "true"), ("false", "false")]
SQLITE_HAS_TAG = 'EXISTS (SELECT 1 FROM json_each("task"."tags") WHERE json_each.value = %s)'

# Bounds on a list's parameters, checked before any query is built: the work of one
# request never grows with its input (a search costs two LIKE clauses per word).
# A task has at most Task.MAX_TAGS tags of Task.TAG_MAX_LENGTH characters, so a filter
# beyond those could match nothing anyway.
MAX_FILTER_TAGS = Task.MAX_TAGS
MAX_FILTER_TAG_LENGTH = Task.TAG_MAX_LENGTH
# What `search` looks in: the task's free text, every text field without choices.
SEARCH_FIELDS = tuple(
    field.name
    for field in Task._meta.concrete_fields
    if isinstance(field, models.CharField | models.TextField) and not field.choices
)
ORDERING_FIELDS = ("created_at", "updated_at", "due_date", "priority", "title", "position")
DEFAULT_ORDERING = ("-created_at",)
MAX_ORDERING_LENGTH = 200  # every field once, with `-` and commas, fits
# Direction used when `sort_by` is given without `order`.
NATURAL_ORDER = {
    "created_at": "desc",
    "updated_at": "desc",
    "priority": "desc",
    "due_date": "asc",
    "title": "asc",
    "position": "asc",
}
# `ordering` as the schema publishes it (and the code checks): 1 to 6 terms, spaces around.
_TERM = f" *-?({'|'.join(ORDERING_FIELDS)}) *"
ORDERING_PATTERN = f"{_TERM}(,{_TERM}){{0,{len(ORDERING_FIELDS) - 1}}}"


def search_limits() -> tuple[int, int, int]:
    """(words, characters per word, characters in all) a search may have."""
    words, length = settings.SEARCH_MAX_WORDS, settings.SEARCH_MAX_WORD_LENGTH
    return words, length, words * (length + 3)  # room for quotes and separators


class SharedCopy(OrderedDict[str, Any]):
    """A FilterSet's filters or a form's fields that no instance changes: where
    django-filter and Django deep-copy them for each instance (each request), the
    instances share them. TaskFilter's filter methods are plain functions, so its
    filters need no filter set of their own."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return dict(self)


class TagsField(forms.CharField):
    """`a,b`: the distinct tags, within the bounds of a task's tags."""

    def to_python(self, value: Any) -> tuple[str, ...]:  # type: ignore[override]  # the tags
        text = super().to_python(value) or ""
        if len(text) > MAX_FILTER_TAGS * (MAX_FILTER_TAG_LENGTH + 2):
            raise forms.ValidationError(f"At most {MAX_FILTER_TAGS} tags.")
        tags = tuple(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))
        if len(tags) > MAX_FILTER_TAGS:
            raise forms.ValidationError(f"At most {MAX_FILTER_TAGS} tags.")
        if any(len(tag) > MAX_FILTER_TAG_LENGTH for tag in tags):
            raise forms.ValidationError(f"A tag has at most {MAX_FILTER_TAG_LENGTH} characters.")
        return tags

    def validate(self, value: Any) -> None:  # the text was checked; the tags need no more
        pass

    def run_validators(self, value: Any) -> None:
        super().run_validators(",".join(value))  # null characters


class SearchField(forms.CharField):
    """Words (DRF's SearchFilter splitting: quotes keep a phrase), within SEARCH_MAX_*."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, **kwargs)

    def to_python(self, value: Any) -> tuple[str, ...]:  # type: ignore[override]  # the words
        text = super().to_python(value) or ""
        max_words, max_length, max_total = search_limits()
        if len(text) > max_total:
            raise forms.ValidationError(f"At most {max_total} characters ({max_words} words).")
        if "\x00" in text:
            raise forms.ValidationError("Null characters are not allowed.")
        # The stub says a list: DRF's splits the text (smart_split).
        terms = tuple(search_smart_split(text))  # type: ignore[arg-type]
        if len(terms) > max_words:
            raise forms.ValidationError(f"At most {max_words} words.")
        if any(len(term) > max_length for term in terms):
            raise forms.ValidationError(f"A word has at most {max_length} characters.")
        return terms

    def validate(self, value: Any) -> None:
        pass

    def run_validators(self, value: Any) -> None:
        pass  # checked in to_python, before splitting


def _unknown_field(field: str) -> forms.ValidationError:
    allowed = ", ".join(ORDERING_FIELDS)
    return forms.ValidationError(f"Unknown sort field '{field}'. Allowed: {allowed}.")


class OrderingField(forms.CharField):
    """DRF-style `ordering=-priority,title`: the terms, each a known field at most once."""

    def to_python(self, value: Any) -> tuple[str, ...]:  # type: ignore[override]  # the terms
        text = super().to_python(value) or ""
        if not text:
            return ()
        if len(text) > MAX_ORDERING_LENGTH:
            raise forms.ValidationError(f"At most {MAX_ORDERING_LENGTH} characters.")
        terms = tuple(term.strip() for term in text.split(","))
        if len(terms) > len(ORDERING_FIELDS):
            raise forms.ValidationError(f"At most {len(ORDERING_FIELDS)} fields.")
        for term in terms:
            if term.removeprefix("-") not in ORDERING_FIELDS:
                raise _unknown_field(term.removeprefix("-"))
        if not re.fullmatch(ORDERING_PATTERN, text):
            raise forms.ValidationError("Comma-separated fields, `-` for descending.")
        return terms


class SortByField(forms.CharField):
    def validate(self, value: str) -> None:
        if value and value not in ORDERING_FIELDS:
            raise _unknown_field(value)


class OrderField(forms.CharField):
    def to_python(self, value: Any) -> str:
        return (super().to_python(value) or "").lower()

    def validate(self, value: str) -> None:
        if value not in ("", "asc", "desc"):
            raise forms.ValidationError("Must be `asc` or `desc`.")


class TaskFilterForm(forms.Form):
    """Resolves the three ways to sort into `ordering`: the terms the list is sorted by."""

    # What each field cleans to when its parameter is absent (see absent_values).
    absent: Mapping[str, Any] = MappingProxyType({})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django translates the ":" for every form; only rendering needs it.
        kwargs.setdefault("label_suffix", gettext_lazy(":"))
        super().__init__(*args, **kwargs)

    @classmethod
    def absent_values(cls) -> dict[str, Any]:
        """Each field that reads its own parameter only, cleaned without it: the same
        value every time (tests/tasks/test_filters.py checks it), so a request skips
        cleaning the parameters it does not send."""
        values: dict[str, Any] = {}
        for name, field in cls.base_fields.items():
            if isinstance(field.widget, forms.MultiWidget | forms.FileInput):
                continue  # reads other keys, or files
            try:
                values[name] = field.clean(field.widget.value_from_datadict({}, {}, name))
            except forms.ValidationError:
                continue  # absent is an error: always cleaned
        return values

    def _clean_fields(self) -> None:
        # Django's, less the BoundField it builds per field for HTML rendering (these
        # forms are never rendered), and cleaning only the parameters sent: every list
        # request validates its parameters, most of which are absent.
        cleaned, absent, data = self.cleaned_data, self.absent, self.data
        for name, field in self.fields.items():
            key = self.add_prefix(name)
            if name in absent and key not in data:
                cleaned[name] = absent[name]
                continue
            value = field.widget.value_from_datadict(data, self.files, key)
            try:
                cleaned[name] = field.clean(value)
            except forms.ValidationError as error:
                self.add_error(name, error)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        sort_by, order = data.pop("sort_by", ""), data.pop("order", "")
        if sort_by and data.get("ordering"):
            self.add_error("sort_by", "Use either `sort_by` or `ordering`.")
        elif sort_by or order:
            sort_by = sort_by or "created_at"
            descending = (order or NATURAL_ORDER[sort_by]) == "desc"
            data["ordering"] = (f"-{sort_by}" if descending else sort_by,)
        if "ordering" in data:  # absent: the field's own error
            data["ordering"] = data["ordering"] or DEFAULT_ORDERING
        return data


class TagsFilter(django_filters.CharFilter):
    field_class = TagsField


class SearchFilter(django_filters.CharFilter):
    field_class = SearchField


class SortByFilter(django_filters.CharFilter):
    field_class = SortByField


class OrderFilter(django_filters.CharFilter):
    field_class = OrderField


class AllChoiceFilter(django_filters.ChoiceFilter):
    """A choice filter where `all` (what the frontend's selects say) means no filter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["choices"] = [("all", "all"), *kwargs["choices"]]
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs if value == "all" else super().filter(qs, value)


class TaskOrderingFilter(django_filters.OrderingFilter):
    """Sorts by the resolved `ordering` (see TaskFilterForm), unlike django-filter's
    filter: `priority` by meaning (high > medium > low), tasks without a due date
    last, and the id last so that every order is total and pages never overlap."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields=ORDERING_FIELDS, **kwargs)
        # One text field with the 400s above, not django-filter's CSV of choices.
        self.field_class = OrderingField  # type: ignore[assignment]  # text, not django-filter's CSV
        for choice_option in ("choices", "null_label"):
            self.extra.pop(choice_option, None)

    def filter(self, qs: QuerySet, value: tuple[str, ...]) -> QuerySet:
        expressions = [self._expression(term) for term in value]
        return qs.order_by(*expressions, "-created_at", "-id")

    @staticmethod
    def _expression(term: str) -> OrderBy:
        field = term.removeprefix("-")
        value = PRIORITY_RANK if field == "priority" else F(field)
        nulls_last = True if field == "due_date" else None
        return OrderBy(value, descending=term.startswith("-"), nulls_last=nulls_last)


PRIORITY_RANK = Case(
    When(priority=Task.Priority.HIGH, then=Value(3)),
    When(priority=Task.Priority.MEDIUM, then=Value(2)),
    default=Value(1),
    output_field=IntegerField(),
)


# The filter methods: plain functions, so that a filter needs no filter set (see SharedCopy).


def filter_status(queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
    if value == "all":
        return queryset
    return queryset.filter(completed=value == "completed")


def filter_completed(queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
    return queryset.filter(completed=value == "true")


def filter_tags(queryset: QuerySet[Task], name: str, tags: tuple[str, ...]) -> QuerySet[Task]:
    if connection.vendor == "postgresql":
        return queryset.filter(tags__contains=list(tags))  # jsonb @>, a GIN index
    for tag in tags:  # SQLite (the embedded default) has no JSON containment
        queryset = queryset.filter(RawSQL(SQLITE_HAS_TAG, [tag], output_field=BooleanField()))
    return queryset


def filter_overdue(queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
    overdue = Q(completed=False, due_date__lt=timezone.localdate())
    return queryset.filter(overdue) if value == "true" else queryset.exclude(overdue)


def filter_search(queryset: QuerySet[Task], name: str, terms: tuple[str, ...]) -> QuerySet[Task]:
    """Every term in one of SEARCH_FIELDS at least (as DRF's SearchFilter)."""
    condition = Q()
    for term in terms:
        any_field = Q()
        for field in SEARCH_FIELDS:
            any_field |= Q(**{f"{field}__icontains": term})
        condition &= any_field
    return queryset.filter(condition)


class TaskFilter(django_filters.FilterSet):
    """Filters, search and ordering of GET .../tasks; an invalid value is a 400, never
    silently ignored. Its SQL must depend on its sql_key only (it is compiled once
    per key: tasks.queries)."""

    status = django_filters.ChoiceFilter(
        choices=[("all", "all"), ("pending", "pending"), ("completed", "completed")],
        method=filter_status,
        help_text="`pending` or `completed`; `all` (the default) does not filter.",
    )
    completed = django_filters.ChoiceFilter(
        choices=BOOLEAN_CHOICES, method=filter_completed, help_text="`true` or `false`."
    )
    priority = AllChoiceFilter(choices=Task.Priority.choices)
    category = AllChoiceFilter(choices=Task.Category.choices)
    tags = TagsFilter(
        method=filter_tags,
        help_text="Comma-separated; a task matches when it has all of them.",
    )
    due_before = django_filters.DateFilter(
        field_name="due_date", lookup_expr="lte", help_text="Due on or before this date."
    )
    due_after = django_filters.DateFilter(
        field_name="due_date", lookup_expr="gte", help_text="Due on or after this date."
    )
    overdue = django_filters.ChoiceFilter(
        choices=BOOLEAN_CHOICES,
        method=filter_overdue,
        help_text="`true`: open tasks due before today; `false`: all others.",
    )
    search = SearchFilter(
        method=filter_search,
        help_text=f"Case-insensitive text in {' or '.join(SEARCH_FIELDS)}; several words "
        "must all match. At most SEARCH_MAX_WORDS words (default 10) of "
        "SEARCH_MAX_WORD_LENGTH characters (default 100).",
    )
    # sort_by and order only feed `ordering` (TaskFilterForm.clean): they filter nothing.
    sort_by = SortByFilter()
    order = OrderFilter()
    ordering = TaskOrderingFilter()

    class Meta:
        model = Task
        fields: list[str] = []
        form = TaskFilterForm

    _form_class: ClassVar[type[TaskFilterForm]]

    def get_form_class(self) -> type[TaskFilterForm]:
        # django-filter builds a new form class (every field, every choice label) per
        # request; the filters never change, so build it once per FilterSet class.
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = cast(type[TaskFilterForm], super().get_form_class())  # Meta.form's
            form_class.base_fields = SharedCopy(form_class.base_fields)
            form_class.absent = MappingProxyType(form_class.absent_values())
            type(self)._form_class = form_class
        return form_class

    def sql_key(self) -> Hashable:
        """What the SQL of this filter set's queryset depends on: its class, its
        `cleaned_data` and, with `overdue`, the day. Call is_valid() first."""
        data = self.form.cleaned_data
        day = timezone.localdate() if data.get("overdue") else None
        return (type(self), tuple(sorted(data.items())), day)

    def filter_queryset(self, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if isinstance(queryset, TaskQuerySet):  # its SQL is then compiled once per key
            # Only the plain list is prepared (see prepared_cursor): a filter's or a
            # search's best plan depends on how many of the user's tasks match, which a
            # generic plan cannot know (a 100,000-task user's filtered page took 10-30 ms
            # on one, 0.4-0.7 ms planned for them).
            plain = not any(name in (self.data or {}) for name in self.form.fields)
            return queryset.filtered_once(self.sql_key(), super().filter_queryset, prepare=plain)
        return super().filter_queryset(queryset)

    @property
    def qs(self) -> QuerySet[Task]:
        # django-filter's, less its clone of the queryset before filtering: a
        # TaskQuerySet's filter_queryset returns a clone already.
        if not hasattr(self, "_qs") and self.is_bound and isinstance(self.queryset, TaskQuerySet):
            self.errors  # noqa: B018 - validates, as django-filter's
            self._qs = self.filter_queryset(self.queryset)
        return super().qs


TaskFilter.base_filters = SharedCopy(TaskFilter.base_filters)


def ordering_parameters() -> list[OpenApiParameter]:
    """The three sort parameters as the schema publishes them (django-filter's own
    schema would make `ordering` a list of choices)."""

    def parameter(name: str, description: str, schema: dict[str, Any]) -> OpenApiParameter:
        return OpenApiParameter(name, {"type": "string", **schema}, description=description)

    return [
        parameter(
            "sort_by",
            "Sort field (the frontend's name for `ordering`).",
            {"enum": list(ORDERING_FIELDS)},
        ),
        parameter(
            "order",
            "Direction for `sort_by`; its natural direction when omitted.",
            {"enum": ["asc", "desc"]},
        ),
        parameter(
            "ordering",
            "DRF-style ordering: comma-separated fields, `-` for descending, from "
            f"{', '.join(ORDERING_FIELDS)}. Not together with `sort_by`.",
            {"pattern": f"^{ORDERING_PATTERN}$", "maxLength": MAX_ORDERING_LENGTH},
        ),
    ]
