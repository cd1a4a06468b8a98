import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from django.core.validators import RegexValidator
from django.db import connections, models
from django.db.models import CharField, Func, QuerySet, TextField
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.db.models.functions import Cast
from django.db.models.query import ValuesListIterable
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from accounts.models import User
from tasks.models import Task
from tasks.prebuilt_fields import PrebuiltFieldsSerializer

# The API's Task: every concrete field of the model but these, a relation by its id.
HIDDEN_FIELDS = {"change_seq"}  # the changes feed's place: not part of a task
TASK_FIELDS = [
    field.attname if field.is_relation else field.name
    for field in Task._meta.concrete_fields
    if field.name not in HIDDEN_FIELDS
]


def _iso(value: datetime) -> str:
    """DRF's DateTimeField output: ISO 8601, UTC written as `Z`, no zero fraction."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class _UtcIso(Func):
    """A timestamptz column written by PostgreSQL the way `_iso` writes it.

    The column appears three times in the template: only a column (no parameters) fits.
    """

    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', "
        '%(expressions)s) = %(expressions)s THEN \'YYYY-MM-DD"T"HH24:MI:SS"Z"\' '
        'ELSE \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\' END)'
    )
    output_field = CharField()


class _IsoDate(Func):
    """A date column written by PostgreSQL as date.isoformat() writes it."""

    template = "to_char(%(expressions)s, 'YYYY-MM-DD')"
    output_field = CharField()


class Format(NamedTuple):
    """How the API writes one kind of value, from a model instance and in PostgreSQL."""

    python: Callable[[Any], Any]  # the model's value (not None) as the API writes it
    sql: Callable[[str], Func]  # the column as PostgreSQL text in the same format


# The output format, per kind of model field (the most specific class first); any other
# value is written as the model holds it. tests/tasks/test_task_rows.py checks that both
# columns agree.
FORMATS: dict[type[models.Field], Format] = {
    models.UUIDField: Format(str, lambda column: Cast(column, CharField())),
    models.DateTimeField: Format(_iso, _UtcIso),
    models.DateField: Format(date.isoformat, _IsoDate),
    models.JSONField: Format(lambda value: value, lambda column: Cast(column, TextField())),
}


def _format_of(field: models.Field | ForeignObjectRel) -> Format | None:
    return next((f for kind, f in FORMATS.items() if isinstance(field, kind)), None)


# (API name, its format) of every field, in order.
_FIELD_FORMATS = [(name, _format_of(Task._meta.get_field(name))) for name in TASK_FIELDS]
_JSON_FIELDS = [
    name for name in TASK_FIELDS if isinstance(Task._meta.get_field(name), models.JSONField)
]


def task_representation(task: Any) -> dict[str, Any]:
    """A task (a model instance or a named row) as the API writes it."""
    data = {}
    for name, format in _FIELD_FORMATS:
        value = getattr(task, name)
        data[name] = value if format is None or value is None else format.python(value)
    return data


class TaskRow(dict[str, Any]):
    """A task as the API writes it (`task_rows` on PostgreSQL): its own representation,
    plus its place in the changes feed (`seq`, not part of it)."""

    __slots__ = ("seq",)
    seq: int

    @property
    def completed(self) -> bool:
        return self["completed"]


def task_row(row: tuple[Any, ...]) -> TaskRow:
    """A row of `task_rows`' SQL on PostgreSQL (JSON as text) as a TaskRow."""
    task = TaskRow(zip(TASK_FIELDS, row, strict=False))  # all but change_seq, the last
    for name in _JSON_FIELDS:
        task[name] = orjson.loads(task[name])
    task.seq = row[-1]
    return task


def row_seq(row: Any) -> int:
    """The `change_seq` of a row of `task_rows`."""
    return row.seq if type(row) is TaskRow else row.change_seq


class _TaskRowIterable(ValuesListIterable):
    def __iter__(self) -> Iterator[TaskRow]:
        return map(task_row, super().__iter__())


def task_rows(queryset: QuerySet[Task]) -> QuerySet:
    """The queryset's tasks as rows for TaskSerializer to list, not model instances.

    On PostgreSQL, TaskRow dicts: every value comes as FORMATS writes it (JSON as
    text that orjson decodes), so a row is its own representation: Django's
    timestamptz loader would parse each value in Python only for the serializer to
    format it again. Elsewhere (SQLite), named tuples. Still a queryset, so
    pagination can slice and count it. Each row also carries its `change_seq` (see
    row_seq), for the ETag.
    """
    if connections[queryset.db].vendor != "postgresql":
        return queryset.values_list(*TASK_FIELDS, "change_seq", named=True)
    columns = [name if format is None else format.sql(name) for name, format in _FIELD_FORMATS]
    rows = queryset.values_list(*columns, "change_seq")
    rows._iterable_class = _TaskRowIterable  # Django's own hook for named rows; stable since 2.0
    return rows


class StrictCharField(serializers.CharField):
    """Only a JSON string is text: DRF's CharField would store `12` or `1.5` as "12", "1.5".

    `max_length` applies to the string as sent, as the OpenAPI `maxLength` says, not only
    to what remains after trimming.
    """

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


# Blank (all-whitespace) text is already refused; this documents it as the schema's
# `pattern`: a character Python's strip() keeps, written so that JavaScript's regex
# engine agrees (its \s lacks \x1c-\x1f and \x85, and has \ufeff, which strip() keeps).
NOT_BLANK = RegexValidator(r"[^\s\x1c-\x1f\x85]|\ufeff", "This field may not be blank.")


class StrictBooleanField(serializers.BooleanField):
    """Only JSON `true`/`false`: DRF's BooleanField also takes "yes", "0", 1 and the like."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """Only a JSON integer: DRF's IntegerField also takes "5" and 5.0."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictDateField(serializers.DateField):
    """Only `YYYY-MM-DD`: Python's ISO parser also takes `20261201` and `2026-W48-2`."""

    pattern = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)

    def to_internal_value(self, value: Any) -> date:
        if not isinstance(value, str) or not self.pattern.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class TaskSerializer(PrebuiltFieldsSerializer, serializers.ModelSerializer):
    """A task as the frontend reads and writes it; the owner never comes from input.

    Input types are strict (a number is not a title, "yes" is not a boolean): a client
    sending the wrong type gets a 400 naming the field instead of a coerced value.
    Unknown and read-only fields in the body are ignored.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.BooleanField: StrictBooleanField,
        models.DateField: StrictDateField,
    }

    user_id = serializers.CharField(read_only=True)
    title = StrictCharField(max_length=Task.TITLE_MAX_LENGTH, validators=[NOT_BLANK])
    description = StrictCharField(
        max_length=Task.DESCRIPTION_MAX_LENGTH, allow_null=True, allow_blank=True, required=False
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=Task.TAG_MAX_LENGTH, validators=[NOT_BLANK]),
        max_length=Task.MAX_TAGS,
        required=False,
        help_text=f"Up to {Task.MAX_TAGS} short labels; duplicates are dropped.",
    )
    position = StrictIntegerField(
        min_value=0,
        max_value=Task.MAX_POSITION,
        required=False,
        help_text="Manual ordering; defaults to the end of the user's list.",
    )

    class Meta:
        model = Task
        fields = TASK_FIELDS
        read_only_fields = ["id", "version", "completed_at", "created_at", "updated_at"]
        extra_kwargs = {
            "version": {
                "help_text": "Goes up by one with every write; the `ETag` is this number, "
                "quoted. Send it back in `If-Match` to write only this version."
            }
        }

    def validate_tags(self, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))

    def to_representation(self, task: Task | TaskRow) -> dict[str, Any]:
        if type(task) is TaskRow:  # PostgreSQL already wrote every value as the API does
            return task
        # The declared fields' output (FORMATS), without DRF's field-by-field rendering:
        # a 1000-task list is the frontend's default call.
        return task_representation(task)


MAX_BATCH_OPERATIONS = 100


class BatchOperationSerializer(serializers.Serializer):
    """One operation of POST .../tasks/batch; `task` is checked as its own route checks it."""

    OPS = ["create", "update", "complete", "delete"]

    op = serializers.ChoiceField(choices=OPS)
    id = serializers.UUIDField(required=False, help_text="The task to update, complete or delete.")
    task = serializers.DictField(
        required=False,
        help_text="create: the new task's fields (as POST .../tasks); "
        "update: the fields to change (as PATCH .../tasks/{id}).",
    )
    completed = StrictBooleanField(
        required=False, help_text="complete: the value to set; left out, it toggles."
    )
    if_match = StrictIntegerField(
        min_value=1,
        max_value=Task.MAX_VERSION,
        required=False,
        help_text="update, complete, delete: apply only while the task is at this version.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        op = attrs["op"]
        if op != "create" and "id" not in attrs:
            raise serializers.ValidationError({"id": ["This field is required."]})
        operation: dict[str, Any] = {"op": op, "id": attrs.get("id")}
        if "if_match" in attrs:
            operation["versions"] = (attrs["if_match"],)
        if op in ("create", "update"):
            if "task" not in attrs:
                raise serializers.ValidationError({"task": ["This field is required."]})
            fields = TaskSerializer(data=attrs["task"], partial=op == "update")
            if not fields.is_valid():
                raise serializers.ValidationError({"task": fields.errors})
            operation["fields"] = dict(fields.validated_data)
        if op == "complete":
            operation["completed"] = attrs.get("completed")
        return operation


class _CreateOperation(serializers.Serializer):
    op = serializers.ChoiceField(choices=["create"])
    task = TaskSerializer(help_text="The new task's fields, as POST .../tasks takes them.")


class _IfMatch(serializers.Serializer):
    id = serializers.UUIDField()
    if_match = serializers.IntegerField(
        min_value=1,
        max_value=Task.MAX_VERSION,  # as BatchOperationSerializer enforces
        required=False,
        help_text="Apply only while the task is at this version.",
    )


class _UpdateOperation(_IfMatch):
    op = serializers.ChoiceField(choices=["update"])
    task = TaskSerializer(partial=True, help_text="The fields to change, as PATCH takes them.")


class _CompleteOperation(_IfMatch):
    op = serializers.ChoiceField(choices=["complete"])
    completed = serializers.BooleanField(
        required=False, help_text="The value to set; left out, it toggles."
    )


class _DeleteOperation(_IfMatch):
    op = serializers.ChoiceField(choices=["delete"])


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="BatchOperation",
        serializers={
            "create": _CreateOperation,
            "update": _UpdateOperation,
            "complete": _CompleteOperation,
            "delete": _DeleteOperation,
        },
        resource_type_field_name="op",
        many=True,
    )
)
class _OperationsField(serializers.ListField):
    """The operations; each is checked by BatchOperationSerializer (the schema: one of four)."""


class BatchSerializer(serializers.Serializer):
    operations = _OperationsField(
        child=serializers.DictField(),
        min_length=1,
        max_length=MAX_BATCH_OPERATIONS,
        help_text=f"1 to {MAX_BATCH_OPERATIONS} operations, applied in order, all or none.",
    )

    def validate_operations(self, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        validated, errors = [], {}
        for index, raw in enumerate(operations):
            operation = BatchOperationSerializer(data=raw)
            if operation.is_valid():
                validated.append(operation.validated_data)
            else:
                errors[str(index)] = operation.errors
        if errors:
            raise serializers.ValidationError(errors)
        return validated


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "minItems": 1,
        "maxItems": 1000,
        "uniqueItems": True,
    }
)
class _DistinctIdsField(serializers.ListField):
    pass


class ReorderSerializer(serializers.Serializer):
    ids = _DistinctIdsField(
        child=serializers.UUIDField(),
        min_length=1,
        max_length=1000,
        help_text="Task ids in their new order; each takes one of the places these tasks "
        "held, the user's other tasks keep theirs.",
    )

    def validate_ids(self, ids: list[Any]) -> list[Any]:
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Each id may appear once.")
        return ids


class TaskCompleteSerializer(PrebuiltFieldsSerializer):
    """Body of PATCH .../complete: empty to toggle, or the value to set."""

    completed = StrictBooleanField(required=False, help_text="Set this value instead of toggling.")


class TaskStatsSerializer(serializers.Serializer):
    total_tasks = serializers.IntegerField()
    completed_tasks = serializers.IntegerField()
    pending_tasks = serializers.IntegerField()
    overdue_tasks = serializers.IntegerField(help_text="Open tasks due before today.")
    completion_rate = serializers.FloatField(help_text="Percent of tasks completed, 0-100.")
    by_priority = serializers.DictField(child=serializers.IntegerField())
    by_category = serializers.DictField(child=serializers.IntegerField())


class UserSerializer(serializers.ModelSerializer):
    name = StrictCharField(max_length=255, validators=[NOT_BLANK])

    class Meta:
        model = User
        fields = ["id", "email", "name", "image"]
        read_only_fields = ["id", "email", "image"]

    def to_representation(self, user: User) -> dict[str, Any]:
        # The declared fields' output, written out: building a ModelSerializer's fields
        # on every call was a tenth of the profile endpoint's CPU.
        return {"id": user.id, "email": user.email, "name": user.name, "image": user.image}


class ProfileSerializer(serializers.Serializer):
    user = UserSerializer()
    stats = TaskStatsSerializer()


class TaskEnvelopeSerializer(serializers.Serializer):
    """`{"task": Task}`: the response of every single-task route."""

    task = TaskSerializer()


class TaskListSerializer(serializers.Serializer):
    """`{"tasks": [Task]}`."""

    tasks = TaskSerializer(many=True)


class ChangesSerializer(serializers.Serializer):
    """A page of the changes feed."""

    tasks = TaskSerializer(many=True, help_text="Created or changed since the cursor, whole.")
    deleted = serializers.ListField(
        child=serializers.UUIDField(), help_text="Ids of tasks deleted since the cursor."
    )
    cursor = serializers.CharField(help_text="Opaque: send it as `since` next time.")
    has_more = serializers.BooleanField(help_text="More changes wait: call again at once.")


class BatchResultSerializer(serializers.Serializer):
    class Result(serializers.Serializer):
        op = serializers.ChoiceField(choices=BatchOperationSerializer.OPS)
        status = serializers.IntegerField(help_text="What the operation's own route answers.")
        task = TaskSerializer(required=False, help_text="create, update, complete.")
        id = serializers.UUIDField(required=False, help_text="delete: the deleted task's id.")

    results = Result(many=True, help_text="One per operation, in order.")
