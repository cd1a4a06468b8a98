"""JSON Schema of the MCP tools: argument types and the REST API's result shapes.

Arguments publish strict schemas (types, enums, lengths, formats), but their
values are checked by the REST API's own code (TaskSerializer, TaskFilter, the
ordering and pagination classes), so a bad value fails with REST's message.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from tasks.filters import MAX_FILTER_TAG_LENGTH, MAX_FILTER_TAGS, ORDERING_FIELDS, search_limits
from tasks.models import Task
from tasks.pagination import MAX_INT, TaskPagination
from tasks.serializers import MAX_BATCH_OPERATIONS


def _schema(description: str = "", **schema: Any) -> Any:
    """Publish `schema` for a value whose rules the REST code enforces (and words)."""
    return WithJsonSchema({**schema, "description": description} if description else schema)


# Arguments
TaskId = Annotated[str, _schema("The task's id.", type="string", format="uuid")]
Title = Annotated[
    str,
    _schema("Required; trimmed.", type="string", minLength=1, maxLength=Task.TITLE_MAX_LENGTH),
]
Description = Annotated[
    str | None,
    _schema("Or null.", type=["string", "null"], maxLength=Task.DESCRIPTION_MAX_LENGTH),
]
# The choices come from the model: a new priority or category needs no edit here.
Priority = Annotated[str, _schema(type="string", enum=Task.Priority.values)]
Category = Annotated[str, _schema(type="string", enum=Task.Category.values)]
DueDate = Annotated[
    str | None, _schema("YYYY-MM-DD, or null.", type=["string", "null"], format="date")
]
Tags = Annotated[
    list[str],
    _schema(
        f"Up to {Task.MAX_TAGS} short labels; duplicates are dropped.",
        type="array",
        items={"type": "string", "maxLength": Task.TAG_MAX_LENGTH},
        maxItems=Task.MAX_TAGS,
    ),
]
Position = Annotated[
    int,
    _schema("Manual ordering; defaults to the end of the list.", type="integer", minimum=0,
            maximum=MAX_INT),
]  # fmt: skip
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
        f"Words in title or description, all of which must match: at most {_SEARCH_WORDS} "
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


# Results: the REST API's representations.
DateTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class TaskData(BaseModel):
    """A task as the REST API represents it."""

    id: Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
    user_id: str
    title: str
    description: str | None
    completed: bool
    priority: Priority
    category: Category
    due_date: Annotated[str | None, WithJsonSchema({"type": ["string", "null"], "format": "date"})]
    tags: list[str]
    position: int
    version: int = Field(description="Goes up with every write; pass it as `if_match`.")
    completed_at: Annotated[
        str | None, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})
    ]
    created_at: DateTime
    updated_at: DateTime


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
