"""The task operations as MCP tools, on the same selectors, services and serializer as REST.

Results are TaskSerializer's representation; failures are `isError` results whose
structured content is REST's `{"error": {"code", "message", "details"}}`. Each call
runs its ORM work in a worker thread with fresh database connections.
"""

import json
import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from accounts.models import User
from config.errors import api_error, error_body
from config.postgresql.base import request_deadline
from mcp_server.auth import stdio_user
from mcp_server.schemas import (
    BatchResults,
    Category,
    Changes,
    DeletedTask,
    DueAfter,
    DueBefore,
    HasTags,
    IfMatch,
    Limit,
    Offset,
    Operations,
    Order,
    Priority,
    Search,
    Since,
    SortField,
    Status,
    TaskData,
    TaskId,
    TaskList,
    TaskResult,
    TaskStats,
    with_task_arguments,
)
from ratelimit.limits import charge_write
from tasks import selectors, services
from tasks.models import Task
from tasks.serializers import MAX_BATCH_OPERATIONS, BatchSerializer, TaskSerializer
from tasks.views import TaskPreconditionFailed, batch_error, batch_results

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TaskToolError(ToolError):
    """A failure carrying the REST API's error: `{"code", "message", "details"}`."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


class TasksMCPServer(MCPServer):
    """MCPServer whose tool failures are `isError` results in the REST error shape."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as failure:
            error = _error_of(failure)
            logger.info("MCP tool %s failed: %s %s", name, error["code"], error["message"])
            body = {"error": error}
            return CallToolResult(
                content=[TextContent(type="text", text=json.dumps(body))],
                structured_content=body,
                is_error=True,
            )


def _error_of(failure: ToolError) -> dict[str, Any]:
    cause = failure.__cause__
    if isinstance(cause, TaskToolError):
        return cause.error
    if isinstance(cause, ValidationError):  # arguments that do not fit the input schema
        details: dict[str, list[str]] = {}
        for error in cause.errors():
            field = ".".join(str(part) for part in error["loc"]) or "non_field_errors"
            details.setdefault(field, []).append(error["msg"])
        field, messages = next(iter(details.items()))
        return error_body(400, f"{field}: {messages[0]}", details)["error"]
    if isinstance(failure, UnexpectedToolError):
        logger.error("MCP tool crashed", exc_info=cause)
        return error_body(500, "Internal server error.")["error"]
    return error_body(400, str(failure))["error"]  # e.g. an unknown tool


server = TasksMCPServer(
    name="tasks-api",
    title="Tasks API",
    version="1.0.0",
    instructions=(
        "Manage the signed-in user's todo tasks: list (filter, search, sort, paginate), "
        "get, create, update, complete, delete, and count them; apply several changes "
        "at once (batch); follow changes since a cursor (list_changes). Results carry "
        "each task's `version`: pass it as `if_match` so a write never overwrites a "
        "change you have not seen. Every call acts for the "
        "user of the credentials the connection was made with; other users' tasks do "
        "not exist here. Failures carry {error: {code, message, details}}."
    ),
)

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


async def _call(ctx: Context, operation: Callable[[User], T], *, writes: int = 0) -> T:
    """Run `operation` for the calling user in a worker thread (the ORM is sync-only).

    Its `writes` first count against the user's RATE_LIMIT_WRITES, the REST API's own
    counter (a batch: one per operation).
    """
    request = ctx.request_context.request
    user = getattr(request, "scope", {}).get("user")  # HTTP: set by BearerAuthMiddleware
    return await sync_to_async(_run, thread_sensitive=False)(operation, user, writes)


def _run(operation: Callable[[User], T], user: User | None, writes: int) -> T:
    close_old_connections()
    try:
        with request_deadline():  # a tool call waits for the database as long as a request
            user = user or stdio_user()
            if writes:
                charge_write(user=user, cost=writes)
            return operation(user)
    except Exception as error:
        if isinstance(error, services.VersionMismatch):
            error = TaskPreconditionFailed(error.task)
        elif isinstance(error, services.BatchOperationFailed):
            error = batch_error(error)
        status, body = api_error(error)
        raise TaskToolError(body["error"]) from error
    finally:
        close_old_connections()


def _sent(ctx: Context, **arguments: Any) -> dict[str, Any]:
    """The arguments the client actually sent: omitted ones are left alone, null is a value."""
    params = ctx.request_context.params or {}
    sent = params.get("arguments") or {}
    return {name: value for name, value in arguments.items() if name in sent}


def _query(**arguments: Any) -> dict[str, str]:
    """Filter arguments as the REST list's query parameters (None means absent)."""
    params = {}
    for name, value in arguments.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(value)
        params[name] = str(value)
    return params


def _versions(if_match: int | None) -> tuple[int, ...] | None:
    """As REST's If-Match: a version past a bigint matches no task (PRECONDITION_FAILED)."""
    if if_match is None:
        return None
    return (if_match,) if 0 < if_match <= Task.MAX_VERSION else ()


def _task_result(task: Task) -> TaskResult:
    return TaskResult(task=TaskData.model_validate(TaskSerializer(task).data))


@server.tool(annotations=READ_ONLY)
async def list_tasks(
    ctx: Context,
    status: Status | None = None,
    completed: bool | None = None,
    priority: Priority | None = None,
    category: Category | None = None,
    tags: HasTags = None,
    due_before: DueBefore = None,
    due_after: DueAfter = None,
    overdue: Annotated[bool | None, Field(description="Open and due before today.")] = None,
    search: Search = None,
    sort_by: SortField | None = None,
    order: Order | None = None,
    limit: Limit | None = None,
    offset: Offset | None = None,
) -> TaskList:
    """List your tasks, newest first unless sorted; filters combine.

    The same filters, search, sorting and pagination as GET /api/tasks. `priority`
    sorts by meaning (high first when descending); tasks without a due date sort last.
    """
    params = _query(
        status=status, completed=completed, priority=priority, category=category, tags=tags,
        due_before=due_before, due_after=due_after, overdue=overdue, search=search,
        sort_by=sort_by, order=order, limit=limit, offset=offset,
    )  # fmt: skip

    def run(user: User) -> TaskList:
        page = selectors.task_list(user=user, params=params)
        tasks = TaskSerializer(page.tasks, many=True).data  # a ReturnList: stubs say ReturnDict
        return TaskList.model_validate(page.envelope(tasks))  # type: ignore[arg-type]

    return await _call(ctx, run)


@server.tool(annotations=READ_ONLY)
async def get_task(ctx: Context, task_id: TaskId) -> TaskResult:
    """Get one of your tasks by id."""
    return await _call(
        ctx, lambda user: _task_result(selectors.task_get(user=user, task_id=task_id))
    )


@server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
@with_task_arguments(partial=False)
async def create_task(ctx: Context, **fields: Any) -> TaskResult:
    """Create a task for yourself."""
    data = _sent(ctx, **fields)

    def run(user: User) -> TaskResult:
        serializer = TaskSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return _task_result(services.task_create(user=user, **serializer.validated_data))

    return await _call(ctx, run, writes=1)


@server.tool(
    annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True, open_world_hint=False)
)
@with_task_arguments(partial=True)
async def update_task(
    ctx: Context, task_id: TaskId, *, if_match: IfMatch = None, **fields: Any
) -> TaskResult:
    """Change some fields of one of your tasks; fields you leave out keep their values.

    Send `null` to clear `description` or `due_date`. Completing stamps `completed_at`.
    With `if_match`, only if the task is still at that version.
    """
    data = _sent(ctx, **fields)

    def run(user: User) -> TaskResult:
        serializer = TaskSerializer(data=data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        versions = _versions(if_match)
        return _task_result(
            services.task_update(user=user, pk=task_id, versions=versions, **fields)
        )

    return await _call(ctx, run, writes=1)


@server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
async def complete_task(
    ctx: Context,
    task_id: TaskId,
    completed: Annotated[
        bool | None, Field(description="Set this value; leave out to toggle.")
    ] = None,
    if_match: IfMatch = None,
) -> TaskResult:
    """Toggle whether one of your tasks is completed, or set it with `completed`.

    Atomic: concurrent toggles never lose one. With `if_match`, only at that version.
    """
    versions = _versions(if_match)
    return await _call(
        ctx,
        lambda user: _task_result(
            services.task_set_completed(
                user=user, pk=task_id, completed=completed, versions=versions
            )
        ),
        writes=1,
    )


@server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
async def delete_task(ctx: Context, task_id: TaskId, if_match: IfMatch = None) -> DeletedTask:
    """Delete one of your tasks for good; with `if_match`, only at that version."""

    def run(user: User) -> DeletedTask:
        services.task_delete(user=user, pk=task_id, versions=_versions(if_match))
        return DeletedTask(id=str(uuid.UUID(task_id)), deleted=True)  # as the API writes ids

    return await _call(ctx, run, writes=1)


@server.tool(annotations=READ_ONLY)
async def task_stats(
    ctx: Context,
    status: Status | None = None,
    priority: Priority | None = None,
    category: Category | None = None,
    tags: HasTags = None,
    due_before: DueBefore = None,
    due_after: DueAfter = None,
    search: Search = None,
) -> TaskStats:
    """Count your tasks: totals, overdue, completion rate, by priority and by category.

    Optional filters narrow the counted set, as on GET /api/tasks/stats.
    """
    params = _query(
        status=status, priority=priority, category=category, tags=tags,
        due_before=due_before, due_after=due_after, search=search,
    )  # fmt: skip

    def run(user: User) -> TaskStats:
        queryset = selectors.task_filter(user=user, params=params)
        return TaskStats.model_validate(services.task_stats(queryset=queryset))

    return await _call(ctx, run)


@server.tool(annotations=READ_ONLY)
async def list_changes(ctx: Context, since: Since = None, limit: Limit | None = None) -> Changes:
    """Your tasks created or changed since `since`, the ids deleted since, and a new cursor.

    Without `since`: every task (a first sync). Changes come oldest first, at most
    `limit`; with `has_more`, call again at once with the new cursor. Cursors never
    skip a change. Deletions are kept 30 days: an older cursor fails with
    RESYNC_REQUIRED, after which you sync again without `since`. As GET /api/tasks/changes.
    """
    params = _query(since=since, limit=limit)

    def run(user: User) -> Changes:
        changes = selectors.task_changes(user=user, params=params)
        services.purge_tombstones_now_and_then()
        tasks = TaskSerializer(changes.tasks, many=True).data  # a ReturnList: stubs say ReturnDict
        return Changes(
            tasks=tasks,  # type: ignore[arg-type]
            deleted=changes.deleted,
            cursor=changes.cursor,
            has_more=changes.has_more,
        )

    return await _call(ctx, run)


@server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
async def batch(ctx: Context, operations: Operations) -> BatchResults:
    """Apply several create/update/complete/delete operations at once: all, or none.

    Each update, complete or delete may carry `if_match` (the version it was made for).
    If one fails, nothing is written and the error names it (`details.operation`).
    As POST /api/tasks/batch; each operation counts as a write.
    """

    def run(user: User) -> BatchResults:
        body = BatchSerializer(data={"operations": operations})
        body.is_valid(raise_exception=True)
        validated = body.validated_data["operations"]
        results = services.task_batch(user=user, operations=validated)
        return BatchResults.model_validate({"results": batch_results(validated, results)})

    # Charged before validation, like REST: at most what a valid batch could write.
    return await _call(ctx, run, writes=max(1, min(len(operations), MAX_BATCH_OPERATIONS)))
