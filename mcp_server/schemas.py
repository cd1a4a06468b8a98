"""JSON Schema of the MCP tools: argument types and the REST API's result shapes.

Arguments publish strict schemas (types, enums, lengths, formats), but their
values are checked by the REST API's own code (TaskSerializer, TaskFilter, the
ordering and pagination classes), so a bad value fails with REST's message.
"""

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, WithJsonSchema, create_model
from rest_framework import serializers

from tasks.filters import (
    MAX_FILTER_TAG_LENGTH,
    MAX_FILTER_TAGS,
    ORDERING_FIELDS,
    SEARCH_FIELDS,
    search_limits,
)
from tasks.models import Task
from tasks.pagination import MAX_INT, TaskPagination
from tasks.serializers import MAX_BATCH_OPERATIONS, TaskSerializer

F = TypeVar("F", bound=Callable[..., Any])


def _schema(description: str = "", **schema: Any) -> Any:
    """Publish `schema` for a value whose rules the REST code enforces (and words)."""
    return WithJsonSchema({**schema, "description": description} if description else schema)


# Arguments
TaskId = Annotated[str, _schema("The task's id.", type="string", format="uuid")]
Priority = Annotated[str, _schema(type="string", enum=Task.Priority.values)]
Category = Annotated[str, _schema(type="string", enum=Task.Category.values)]
IfMatch = Annotated[
    int | None,
    _schema(
        "Write only while the task is at this `version` (from an earlier result); "
        "otherwise PRECONDITION_FAILED with the current task in `details.current`.",
        type=["integer", "null"],
        minimum=1,
    ),
]
Since = Annotated[
    str | None,
    _schema(
        "The `cursor` of the previous list_changes; leave out for a first sync.",
        type=["string", "null"],
    ),
]
Operations = Annotated[
    list[dict[str, Any]],
    _schema(
        f"1 to {MAX_BATCH_OPERATIONS} operations, applied in order, all or none.",
        type="array",
        minItems=1,
        maxItems=MAX_BATCH_OPERATIONS,
        items={
            "type": "object",
            "required": ["op"],
            "properties": {
                "op": {"type": "string", "enum": ["create", "update", "complete", "delete"]},
                "id": {"type": "string", "format": "uuid",
                       "description": "update, complete, delete: the task."},
                "task": {"type": "object", "description": "create: the new task's fields "
                         "(as create_task); update: the fields to change (as update_task)."},
                "completed": {"type": "boolean",
                              "description": "complete: the value to set; left out, it toggles."},
                "if_match": {"type": "integer", "minimum": 1, "maximum": Task.MAX_VERSION,
                             "description": "update, complete, delete: the version it is for."},
            },
        },
    ),
]  # fmt: skip
Date = Annotated[str, _schema("YYYY-MM-DD.", type="string", format="date")]
# List filters, shared by list_tasks and task_stats.
HasTags = Annotated[
    list[str] | None,
    _schema(
        f"Tasks having all of these (at most {MAX_FILTER_TAGS}).",
        type=["array", "null"],
        items={"type": "string", "maxLength": MAX_FILTER_TAG_LENGTH},
        maxItems=MAX_FILTER_TAGS,
    ),
]
DueBefore = Annotated[Date | None, Field(description="Due on or before.")]
DueAfter = Annotated[Date | None, Field(description="Due on or after.")]
_SEARCH_WORDS, _SEARCH_WORD_LENGTH, _SEARCH_LENGTH = search_limits()
Search = Annotated[
    str | None,
    _schema(
        f"Words in {' or '.join(SEARCH_FIELDS)}, all of which must match: at most {_SEARCH_WORDS} "
        f"words of {_SEARCH_WORD_LENGTH} characters.",
        type=["string", "null"],
        maxLength=_SEARCH_LENGTH,
    ),
]
Status = Annotated[
    str, _schema("`all` (default), `pending` or `completed`.", type="string",
                 enum=["all", "pending", "completed"])
]  # fmt: skip
Order = Annotated[
    str, _schema("Direction for `sort_by` (its natural one when left out).", type="string",
                 enum=["asc", "desc"])
]  # fmt: skip
SortField = Annotated[str, _schema(type="string", enum=list(ORDERING_FIELDS))]
Limit = Annotated[
    int,
    _schema(
        f"Tasks per page (default and maximum {TaskPagination.max_limit}; more is capped).",
        type="integer",
        minimum=1,
    ),
]
Offset = Annotated[int, _schema("Tasks to skip.", type="integer", minimum=0, maximum=MAX_INT)]


# The Task: its fields, types and limits come from TaskSerializer, as REST's do.


def _field_schema(field: serializers.Field) -> tuple[Any, dict[str, Any]]:
    """A serializer field's Python type and JSON Schema (as OpenAPI publishes it)."""
    kind: Any
    schema: dict[str, Any]
    if isinstance(field, serializers.ChoiceField):
        kind, schema = str, {"type": "string", "enum": list(field.choices)}
    elif isinstance(field, serializers.BooleanField):
        kind, schema = bool, {"type": "boolean"}
    elif isinstance(field, serializers.IntegerField):
        kind, schema = int, {"type": "integer"}
        schema |= {"minimum": field.min_value} if field.min_value is not None else {}
        schema |= {"maximum": field.max_value} if field.max_value is not None else {}
    elif isinstance(field, serializers.ListField):
        item_kind, items = _field_schema(field.child)
        kind, schema = list[item_kind], {"type": "array", "items": items}  # type: ignore[valid-type]
        schema |= {"maxItems": field.max_length} if field.max_length is not None else {}
    elif isinstance(field, (serializers.DateTimeField, serializers.DateField)):
        date_time = isinstance(field, serializers.DateTimeField)
        kind, schema = str, {"type": "string", "format": "date-time" if date_time else "date"}
    elif isinstance(field, serializers.UUIDField):
        kind, schema = str, {"type": "string", "format": "uuid"}
    else:
        kind, schema = str, {"type": "string"}
        max_length = getattr(field, "max_length", None)
        if max_length is not None:
            schema["maxLength"] = max_length
        if not field.read_only and not getattr(field, "allow_blank", True):
            schema["minLength"] = 1
    if field.allow_null:
        kind, schema = kind | None, {**schema, "type": [schema["type"], "null"]}
    if field.help_text:
        schema["description"] = str(field.help_text)
    return kind, schema


def _annotation(field: serializers.Field, *, optional: bool = False) -> Any:
    kind, schema = _field_schema(field)
    annotated = Annotated[kind, WithJsonSchema(schema)]  # type: ignore[valid-type]  # built at run time
    return annotated | None if optional and not field.allow_null else annotated


_TASK_FIELDS = TaskSerializer().fields
if TYPE_CHECKING:
    # mypy takes a model built at run time for a variable; its fields are for pydantic.
    class TaskData(BaseModel):
        """A task as the REST API represents it."""

else:
    TaskData = create_model(
        "TaskData",
        __doc__="A task as the REST API represents it.",
        **{name: (_annotation(field), ...) for name, field in _TASK_FIELDS.items()},
    )


def task_arguments(*, partial: bool) -> list[inspect.Parameter]:
    """TaskSerializer's writable fields as a tool's keyword arguments: required as the
    serializer requires them on create, all optional (and null allowed: left out)
    on update. An argument left out is not sent to the serializer (server._sent)."""
    arguments = []
    for name, field in _TASK_FIELDS.items():
        if field.read_only:
            continue
        required = field.required and not partial
        arguments.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if required else None,
                annotation=_annotation(field, optional=partial),
            )
        )
    return arguments


def with_task_arguments(*, partial: bool) -> Callable[[F], F]:
    """Give a tool taking `**fields` the task's fields as its published arguments
    (task_arguments), after its own leading ones."""

    def decorate(tool: F) -> F:
        signature = inspect.signature(tool)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        leading = [p for p in own if p.kind is not p.KEYWORD_ONLY]
        trailing = [p for p in own if p.kind is p.KEYWORD_ONLY]
        parameters = [*leading, *task_arguments(partial=partial), *trailing]
        tool.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return tool

    return decorate


class TaskResult(BaseModel):
    task: TaskData


class TaskList(BaseModel):
    """One page of tasks; the totals describe every task that matches, not just this page."""

    tasks: list[TaskData]
    total: int
    completed_count: int
    pending_count: int
    limit: int
    offset: int


class TaskStats(BaseModel):
    total_tasks: int
    completed_tasks: int
    pending_tasks: int
    overdue_tasks: int = Field(description="Open tasks due before today.")
    completion_rate: float = Field(description="Percent of tasks completed, 0-100.")
    by_priority: dict[str, int]
    by_category: dict[str, int]


class DeletedTask(BaseModel):
    id: str
    deleted: Literal[True]


class Changes(BaseModel):
    """The tasks written since the cursor, the ids deleted since, and the next cursor."""

    tasks: list[TaskData]
    deleted: list[str] = Field(description="Ids of tasks deleted since the cursor.")
    cursor: str = Field(description="Pass it as `since` next time.")
    has_more: bool = Field(description="More changes wait: call again at once with `cursor`.")


class BatchResult(BaseModel):
    op: Literal["create", "update", "complete", "delete"]
    status: int = Field(description="What the operation's own REST route answers.")
    task: TaskData | None = None
    id: str | None = Field(default=None, description="delete: the deleted task's id.")


class BatchResults(BaseModel):
    results: list[BatchResult]
