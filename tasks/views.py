import hashlib
import json
import re
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from config.errors import Conflict
from tasks import selectors, services
from tasks.filters import TaskListOptions
from tasks.models import IdempotencyKey, Task
from tasks.serializers import (
    ProfileSerializer,
    TaskCompleteSerializer,
    TaskEnvelopeSerializer,
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


@extend_schema(tags=["tasks"])
@extend_schema_view(
    list=extend_schema(summary="List tasks (filtered, searched, sorted, paginated)"),
    create=extend_schema(
        summary="Create a task",
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: TaskEnvelopeSerializer},
        examples=[TASK_EXAMPLE],
    ),
    retrieve=extend_schema(summary="Get a task", responses={200: TaskEnvelopeSerializer}),
    update=extend_schema(
        summary="Update a task (omitted optional fields keep their values)",
        responses={200: TaskEnvelopeSerializer},
        examples=[TASK_EXAMPLE],
    ),
    partial_update=extend_schema(
        summary="Partially update a task", responses={200: TaskEnvelopeSerializer}
    ),
    destroy=extend_schema(summary="Delete a task", responses={204: None}),
)
class TaskViewSet(TaskListOptions, viewsets.ModelViewSet):
    """A user's tasks; every query is scoped to the authenticated user.

    Filtering, search and ordering options come from TaskListOptions; reads go
    through tasks.selectors and writes through tasks.services, as the MCP tools do.
    """

    serializer_class = TaskSerializer
    permission_classes = PERMISSIONS
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Task]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Task.objects.none()
        return selectors.task_queryset(user=self.request.user)

    def filter_queryset(self, queryset: QuerySet[Task]) -> QuerySet[Task]:
        return selectors.task_filter(queryset=queryset, params=self.request.query_params)

    def get_object(self) -> Task:
        # DRF's get_object, minus filter_queryset: filters, search and ordering describe
        # lists, and building their django-filter form was a third of a GET's CPU.
        try:
            task = selectors.task_get(user=self.request.user, task_id=self.kwargs["pk"])
        except Task.DoesNotExist:
            raise NotFound() from None
        self.check_object_permissions(self.request, task)
        return task

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = selectors.task_list(user=request.user, params=request.query_params)
        return Response(page.envelope(self.get_serializer(page.tasks, many=True).data))

    def perform_create(self, serializer: TaskSerializer) -> None:
        serializer.instance = services.task_create(
            user=self.request.user, **serializer.validated_data
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
        if key is None:
            status_code, body = self._create(request)
            return Response(body, status=status_code)
        if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
            raise ValidationError(
                {IDEMPOTENCY_KEY_HEADER: ["Must be 1-255 printable ASCII characters."]}
            )
        try:
            status_code, body, replayed = services.idempotent_response(
                user=request.user,
                key=key,
                fingerprint=_request_fingerprint(request.data),
                respond=lambda: self._create(request),
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

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"task": self.get_serializer(self.get_object()).data})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            services.task_delete(user=request.user, pk=kwargs["pk"])
        except Task.DoesNotExist:
            raise NotFound() from None
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
        try:
            serializer.instance = services.task_update(
                user=request.user, pk=kwargs["pk"], **serializer.validated_data
            )
        except Task.DoesNotExist:
            raise NotFound() from None
        return Response({"task": serializer.data})

    @extend_schema(
        summary="Toggle completion, or set it with a body",
        request=TaskCompleteSerializer,
        responses={200: TaskEnvelopeSerializer},
    )
    @action(detail=True, methods=["patch"], url_path="complete", url_name="toggle")
    def complete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = TaskCompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            task = services.task_set_completed(
                user=request.user,
                pk=self.kwargs["pk"],
                completed=body.validated_data.get("completed"),
            )
        except Task.DoesNotExist as error:
            # 404 whether missing, malformed or another user's: ids never leak.
            raise NotFound() from error
        return Response({"task": self.get_serializer(task).data})

    @extend_schema(summary="Counts of the (filtered) task set", responses=TaskStatsSerializer)
    @action(detail=False, methods=["get"], pagination_class=None)
    def stats(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        return Response(services.task_stats(queryset=queryset))


@extend_schema(tags=["profile"])
class ProfileView(APIView):
    """The signed-in user and their task stats; PUT renames the user."""

    permission_classes = PERMISSIONS

    def _profile(self, request: Request) -> Response:
        stats = services.user_task_stats(user=request.user)
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
            services.user_rename(user=request.user, name=serializer.validated_data["name"])
        except User.DoesNotExist as error:  # deleted (by Better Auth) during this request
            raise AuthenticationFailed("user not found") from error
        return self._profile(request)
