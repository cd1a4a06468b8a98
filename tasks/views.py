import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, cast

from django.db.models import QuerySet
from django.utils.http import parse_etags
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, AuthenticationFailed, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from accounts.models import User
from config.errors import Conflict, PreconditionFailed, api_error
from tasks import selectors, services
from tasks.filters import TaskFilter, ordering_parameters
from tasks.models import IdempotencyKey, Task
from tasks.pagination import TaskPagination
from tasks.queries import TaskQuerySet
from tasks.serializers import (
    MAX_BATCH_OPERATIONS,
    BatchResultSerializer,
    BatchSerializer,
    ChangesSerializer,
    ProfileSerializer,
    ReorderSerializer,
    TaskCompleteSerializer,
    TaskEnvelopeSerializer,
    TaskListSerializer,
    TaskSerializer,
    TaskStatsSerializer,
    UserSerializer,
)


class PathUserIsRequestUser(permissions.BasePermission):
    """On /api/{user_id}/... routes the path's user must be the authenticated one."""

    message = "You can only access your own tasks and profile."

    def has_permission(self, request: Request, view: APIView) -> bool:
        path_user = view.kwargs.get("user_id")
        return path_user is None or path_user == request.user.pk


PERMISSIONS = [permissions.IsAuthenticated, PathUserIsRequestUser]


def request_user(request: Request) -> User:
    """The Better Auth user PERMISSIONS let through (DRF's stubs say Django's own User)."""
    return cast(User, request.user)


TASK_EXAMPLE = OpenApiExample(
    "The frontend's form",
    value={
        "title": "Buy milk",
        "description": "2 liters, oat",
        "priority": "high",
        "category": "shopping",
        "due_date": "2026-12-01",
        "tags": ["errands"],
    },
    request_only=True,
)


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = re.compile(
    rf"[\x21-\x7e][\x20-\x7e]{{0,{IdempotencyKey.KEY_MAX_LENGTH - 1}}}"
)
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_KEY_HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retried create safe: the first response with this key (per user, for 24 h) "
        "is replayed with `Idempotent-Replayed: true` and no second task is made. The same "
        "key with a different body is a 409 CONFLICT. Printable ASCII, 1-255 characters."
    ),
    pattern=f"^{IDEMPOTENCY_KEY_PATTERN.pattern}$",
    response=False,
)


def _request_fingerprint(data: Any) -> str:
    """SHA-256 of the parsed body, so formatting and key order don't matter."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))  # ASCII-escaped
    return hashlib.sha256(canonical.encode()).hexdigest()


def task_etag(task: Task) -> str:
    """A task's strong ETag: its version, quoted."""
    return f'"{task.version}"'


def if_match_versions(request: Request) -> tuple[int, ...] | None:
    """The versions an If-Match header allows (None: no header, or `*`).

    Strong comparison: a weak tag or one this API never issued matches no version.
    """
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    versions = []
    for tag in parse_etags(header):
        digits = tag[1:-1]
        # ASCII digits of a bigint at most: int() refuses "²" and 4,300+ digits (a 500).
        quoted = tag.startswith('"') and digits.isascii() and digits.isdigit()
        if quoted and len(digits) <= 19 and int(digits) <= Task.MAX_VERSION:
            versions.append(int(digits))
    return tuple(versions)


def none_match(request: Request, etag: str) -> bool:
    """True when If-None-Match names `etag` (weak comparison) or is `*`."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    tags = parse_etags(header)
    return header.strip() == "*" or etag in (tag.removeprefix("W/") for tag in tags)


def not_modified(etag: str) -> Response:
    response = Response(status=status.HTTP_304_NOT_MODIFIED)
    response["ETag"] = etag
    return response


def with_etag(response: Response, etag: str) -> Response:
    response["ETag"] = etag
    return response


class TaskPreconditionFailed(PreconditionFailed):
    """412 with the task as it is now in the details, and its ETag."""

    def __init__(self, task: Task) -> None:
        super().__init__(TaskSerializer(task).data)
        self.etag = task_etag(task)


def batch_results(
    operations: list[dict[str, Any]], results: list[Task | str]
) -> list[dict[str, Any]]:
    """What a batch answers per operation: its own route's status and task (or id)."""
    answers: list[dict[str, Any]] = []
    for operation, result in zip(operations, results, strict=True):
        op = operation["op"]
        if isinstance(result, str):
            answers.append({"op": op, "status": 204, "id": result})
        else:
            code = 201 if op == "create" else 200
            answers.append({"op": op, "status": code, "task": TaskSerializer(result).data})
    return answers


def batch_error(failure: services.BatchOperationFailed) -> APIException:
    """The failed operation's own error (status, code, details), naming the operation."""
    error = failure.error
    if isinstance(error, services.VersionMismatch):
        error = TaskPreconditionFailed(error.task)
    code, body = api_error(error)
    if code >= 500:
        raise error
    operation = {"index": failure.index, "op": failure.operation["op"]}
    if failure.operation.get("id") is not None:
        operation["id"] = str(failure.operation["id"])
    message = f"operations[{failure.index}] ({operation['op']}): {body['error']['message']}"
    batch_failed = APIException(message)
    batch_failed.status_code = code
    # What config.errors' handler reads; the code is e.g. QUOTA_EXCEEDED, not a generic CONFLICT.
    batch_failed.details = {"operation": operation, "error": body["error"]}  # type: ignore[attr-defined]
    batch_failed.error_code = body["error"]["code"]  # type: ignore[attr-defined]
    return batch_failed


IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        'Write only while the task is at this version: its `ETag` (e.g. `"3"`), several '
        "comma-separated, or `*`. Otherwise 412 PRECONDITION_FAILED, nothing written, "
        "with the current task in `error.details.current` and its `ETag`. Without it, "
        "the last write wins."
    ),
    response=False,
)
IF_NONE_MATCH_PARAMETER = OpenApiParameter(
    "If-None-Match",
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "An `ETag` from an earlier response: while it is still current the answer is "
        "304 Not Modified with an empty body."
    ),
    response=False,
)
ETAG_HEADER = OpenApiParameter(
    "ETag",
    location=OpenApiParameter.HEADER,
    description="Strong validator of this response: a task's is its `version`, quoted.",
    response=[200, 201, 304, 412],
)
TASK_CONDITIONAL = [IF_MATCH_PARAMETER, ETAG_HEADER]


NOT_MODIFIED = OpenApiResponse(description="Not Modified: the `If-None-Match` ETag is current.")


@extend_schema(tags=["tasks"])
@extend_schema_view(
    list=extend_schema(
        summary="List tasks (filtered, searched, sorted, paginated)",
        description="The response's `ETag` covers this page and its counts; send it back "
        "in `If-None-Match` to get 304 Not Modified (empty body) while nothing in the "
        "filtered set changed.",
        parameters=[IF_NONE_MATCH_PARAMETER, ETAG_HEADER, *ordering_parameters()],
        responses={200: TaskSerializer, 304: NOT_MODIFIED},
    ),
    create=extend_schema(
        summary="Create a task",
        parameters=[IDEMPOTENCY_KEY_PARAMETER, ETAG_HEADER],
        responses={201: TaskEnvelopeSerializer},
        examples=[TASK_EXAMPLE],
    ),
    retrieve=extend_schema(
        summary="Get a task",
        parameters=[IF_NONE_MATCH_PARAMETER, ETAG_HEADER],
        responses={200: TaskEnvelopeSerializer, 304: NOT_MODIFIED},
    ),
    update=extend_schema(
        summary="Update a task (omitted optional fields keep their values)",
        parameters=TASK_CONDITIONAL,
        responses={200: TaskEnvelopeSerializer},
        examples=[TASK_EXAMPLE],
    ),
    partial_update=extend_schema(
        summary="Partially update a task",
        parameters=TASK_CONDITIONAL,
        responses={200: TaskEnvelopeSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a task",
        parameters=TASK_CONDITIONAL,
        responses={204: None},
    ),
)
class TaskViewSet(viewsets.ModelViewSet):
    """A user's tasks; every query is scoped to the authenticated user.

    Lists: get_queryset, then TaskFilter (filters, search, ordering), then
    TaskPagination. Reads go through tasks.selectors and writes through
    tasks.services, as the MCP tools do.
    """

    serializer_class = TaskSerializer
    permission_classes = PERMISSIONS
    lookup_value_regex = "[^/]+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = TaskFilter

    def get_queryset(self) -> QuerySet[Task]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Task.objects.none()
        return selectors.task_queryset(user=request_user(self.request))

    def get_object(self) -> Task:
        # DRF's get_object, minus filter_queryset: filters, search and ordering describe
        # lists, and building their django-filter form is costly for a read of one task.
        # Task.DoesNotExist (missing, malformed or another user's id) is the handler's 404.
        task = selectors.task_get(user=request_user(self.request), task_id=self.kwargs["pk"])
        self.check_object_permissions(self.request, task)
        return task

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user, params = request_user(request), request.query_params
        # TaskFilter's, over task_queryset's TaskQuerySet.
        queryset = cast(TaskQuerySet, self.filter_queryset(self.get_queryset()))
        if "If-None-Match" in request.headers:  # one aggregate decides; no list built
            etag = selectors.task_list_etag(user=user, queryset=queryset, params=params)
            if none_match(request, etag):
                return not_modified(etag)
        page = self.paginate_queryset(queryset)
        response = self.get_paginated_response(self.get_serializer(page, many=True).data)
        task_page = cast(TaskPagination, self.paginator).task_page
        total, last_change = task_page.total, task_page.last_change
        return with_etag(
            response,
            selectors.list_etag(user=user, params=params, total=total, last_change=last_change),
        )

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.instance = services.task_create(
            user=request_user(self.request), **serializer.validated_data
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._idempotent(request, self._create)

    def _idempotent(
        self, request: Request, respond: Callable[[Request], tuple[int, dict[str, Any]]]
    ) -> Response:
        """`respond`'s answer; with an Idempotency-Key, the first answer to that key."""
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
        if key is None:
            status_code, body = respond(request)
            return Response(body, status=status_code)
        if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
            raise ValidationError(
                {IDEMPOTENCY_KEY_HEADER: ["Must be 1-255 printable ASCII characters."]}
            )
        try:
            status_code, body, replayed = services.idempotent_response(
                user=request_user(request),
                key=key,
                # A batch's body never replays a create's (nor the other way round).
                fingerprint=_request_fingerprint(
                    request.data if self.action == "create" else [self.action, request.data]
                ),
                respond=lambda: respond(request),
            )
        except services.IdempotencyKeyReused:
            raise Conflict(
                f"{IDEMPOTENCY_KEY_HEADER} was already used with another body."
            ) from None
        response = Response(body, status=status_code)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    def _create(self, request: Request) -> tuple[int, dict[str, Any]]:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return status.HTTP_201_CREATED, {"task": serializer.data}

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # Every `{"task": ...}` answer carries the task's ETag (its version), and so
        # does a 412 (the current task's).
        data = response.data if isinstance(response.data, dict) else None
        if data and isinstance(data.get("task"), dict) and "version" in data["task"]:
            response["ETag"] = f'"{data["task"]["version"]}"'
        elif isinstance(getattr(response, "exception_object", None), TaskPreconditionFailed):
            response["ETag"] = response.exception_object.etag  # type: ignore[attr-defined]
        return super().finalize_response(request, response, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.VersionMismatch):
            exc = TaskPreconditionFailed(exc.task)
        response = super().handle_exception(exc)
        response.exception_object = exc  # type: ignore[attr-defined]  # for finalize_response
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        task = self.get_object()
        if none_match(request, task_etag(task)):
            return not_modified(task_etag(task))
        return Response({"task": self.get_serializer(task).data})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        versions = if_match_versions(request)
        services.task_delete(user=request_user(request), pk=kwargs["pk"], versions=versions)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # PUT: the frontend sends its whole form, but omitted optional fields keep their
        # values; only `title` stays required.
        put = not kwargs.get("partial") and isinstance(request.data, dict)
        if put and "title" not in request.data:
            raise ValidationError({"title": ["This field is required."]})
        # No read before the write: the body is checked on its own, then one UPDATE ...
        # RETURNING writes the fields sent and answers 404 when no task of this user has the id.
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.instance = services.task_update(
            user=request_user(request),
            pk=kwargs["pk"],
            versions=if_match_versions(request),
            **serializer.validated_data,
        )
        return Response({"task": serializer.data})

    @extend_schema(
        summary="Toggle completion, or set it with a body",
        request=TaskCompleteSerializer,
        parameters=TASK_CONDITIONAL,
        responses={200: TaskEnvelopeSerializer},
    )
    @action(detail=True, methods=["patch"], url_path="complete", url_name="toggle")
    def complete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = TaskCompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # 404 (config.errors) whether missing, malformed or another user's: ids never leak.
        task = services.task_set_completed(
            user=request_user(request),
            pk=self.kwargs["pk"],
            completed=body.validated_data.get("completed"),
            versions=if_match_versions(request),
        )
        return Response({"task": self.get_serializer(task).data})

    @extend_schema(
        summary="Counts of the (filtered) task set",
        parameters=ordering_parameters(),
        responses=TaskStatsSerializer,
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def stats(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        return Response(services.task_stats(queryset=queryset))

    @extend_schema(
        summary="Changes since a cursor (offline sync)",
        description=(
            "The tasks created or changed since `since` (whole, oldest change first), the "
            "ids deleted since, and the `cursor` to send next time. Without `since`: every "
            "task (a first sync). Up to `limit` changes (default and maximum 1000); "
            "`has_more` says to call again at once with the new cursor. Cursors are "
            "opaque, only grow, and never skip a change, even one committing late. "
            "Deletions are kept 30 days: an older cursor is 410 RESYNC_REQUIRED, after "
            "which the client syncs again without `since`."
        ),
        parameters=[
            OpenApiParameter(
                "since",
                {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
                description="The `cursor` of the previous response; leave out for a first sync.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 2**31 - 1, "default": 1000},
                description="Changes per response, tasks and deletions together "
                "(larger values are capped at 1000).",
            ),
        ],
        responses={200: ChangesSerializer},
        examples=[
            OpenApiExample(
                "Two changes and a deletion",
                value={
                    "tasks": [
                        {
                            "id": "01938e4c-7b1a-7c3e-9d2f-5a6b7c8d9e0f",
                            "title": "Buy milk",
                            "version": 3,
                        }
                    ],
                    "deleted": ["01938e4a-1c2d-7e3f-8a4b-5c6d7e8f9a0b"],
                    "cursor": "AAAAAAAAAC0AAAAAaU6t3g",
                    "has_more": False,
                },
                response_only=True,
            )
        ],
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def changes(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        changes = selectors.task_changes(user=request_user(request), params=request.query_params)
        services.purge_tombstones_now_and_then()
        tasks = self.get_serializer(changes.tasks, many=True).data
        return Response(
            {
                "tasks": tasks,
                "deleted": changes.deleted,
                "cursor": changes.cursor,
                "has_more": changes.has_more,
            }
        )

    @extend_schema(
        summary=f"Apply up to {MAX_BATCH_OPERATIONS} operations at once, all or none",
        description=(
            "create, update (the fields sent), complete (toggle, or set `completed`) and "
            "delete, in order, in one transaction. Each update, complete or delete may "
            "carry `if_match`: the task's version it was made for. If an operation fails, "
            "nothing is written and the error is that operation's (its status, e.g. 404, "
            "412 with the current task, 400), with `details.operation` its index. "
            "`Idempotency-Key` works as on POST .../tasks, and every operation counts "
            "towards the write rate limit."
        ),
        request=BatchSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: BatchResultSerializer},
        examples=[
            OpenApiExample(
                "Create one, complete one, delete one at version 2",
                value={
                    "operations": [
                        {"op": "create", "task": {"title": "Call the bank"}},
                        {
                            "op": "complete",
                            "id": "01938e4c-7b1a-7c3e-9d2f-5a6b7c8d9e0f",
                            "completed": True,
                        },
                        {
                            "op": "delete",
                            "id": "01938e4a-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
                            "if_match": 2,
                        },
                    ]
                },
                request_only=True,
            )
        ],
    )
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def batch(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._idempotent(request, self._batch)

    def _batch(self, request: Request) -> tuple[int, dict[str, Any]]:
        body = BatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        operations = body.validated_data["operations"]
        try:
            results = services.task_batch(user=request_user(request), operations=operations)
        except services.BatchOperationFailed as failure:
            raise batch_error(failure) from failure
        return status.HTTP_200_OK, {"results": batch_results(operations, results)}

    @extend_schema(
        summary="Reorder tasks (drag and drop)",
        description=(
            "`ids` in their new order take the places those tasks held in the user's list "
            "(by `position`); the other tasks keep theirs; then every task's `position` "
            "becomes its rank, 0 to n - 1: unique and without gaps, also under concurrent "
            "reorders and creates. One UPDATE writes the tasks whose position changed "
            "(their `version` goes up). Returns the listed tasks in that order."
        ),
        request=ReorderSerializer,
        responses={200: TaskListSerializer},
        examples=[
            OpenApiExample(
                "Move the third task to the top",
                value={
                    "ids": [
                        "01938e4c-7b1a-7c3e-9d2f-5a6b7c8d9e0f",
                        "01938e4a-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
                    ]
                },
                request_only=True,
            )
        ],
    )
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def reorder(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ReorderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            tasks = services.task_reorder(
                user=request_user(request), ids=body.validated_data["ids"]
            )
        except services.UnknownTasks as unknown:
            error = NotFound(f"Not among your tasks: {', '.join(unknown.ids)}.")
            error.details = {"ids": unknown.ids}  # type: ignore[attr-defined]  # config.errors
            raise error from None
        return Response({"tasks": self.get_serializer(tasks, many=True).data})

    def write_cost(self, request: Request) -> int:
        """Writes this request counts for in the rate limit: a batch, its operations."""
        if self.action == "batch" and isinstance(request.data, dict):
            operations = request.data.get("operations")
            if isinstance(operations, list):
                return max(1, min(len(operations), MAX_BATCH_OPERATIONS))
        return 1


@extend_schema(tags=["profile"])
class ProfileView(APIView):
    """The signed-in user and their task stats; PUT renames the user."""

    permission_classes = PERMISSIONS

    def _profile(self, request: Request) -> Response:
        stats = services.user_task_stats(user=request_user(request))
        return Response({"user": UserSerializer(request.user).data, "stats": stats})

    @extend_schema(summary="Profile and task stats", responses=ProfileSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._profile(request)

    @extend_schema(
        summary="Rename the user (Better Auth's `name`)",
        request=UserSerializer,
        responses=ProfileSerializer,
    )
    def put(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = UserSerializer(request.user, data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.user_rename(user=request_user(request), name=serializer.validated_data["name"])
        except User.DoesNotExist as error:  # deleted (by Better Auth) during this request
            raise AuthenticationFailed("user not found") from error
        return self._profile(request)
