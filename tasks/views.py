from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks import selectors, services
from tasks.filters import TaskListOptions
from tasks.models import Task
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


@extend_schema(tags=["tasks"])
@extend_schema_view(
    list=extend_schema(summary="List tasks (filtered, searched, sorted, paginated)"),
    create=extend_schema(
        summary="Create a task", responses={201: TaskEnvelopeSerializer}, examples=[TASK_EXAMPLE]
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

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = selectors.task_list(user=request.user, params=request.query_params)
        return Response(page.envelope(self.get_serializer(page.tasks, many=True).data))

    def perform_create(self, serializer: TaskSerializer) -> None:
        serializer.instance = services.task_create(
            user=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: TaskSerializer) -> None:
        services.task_update(task=serializer.instance, **serializer.validated_data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().create(request, *args, **kwargs)
        response.data = {"task": response.data}
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"task": self.get_serializer(self.get_object()).data})

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not kwargs.get("partial") and isinstance(request.data, dict):
            # PUT: the frontend sends its whole form, but omitted optional fields keep
            # their values; only `title` stays required.
            if "title" not in request.data:
                raise ValidationError({"title": ["This field is required."]})
            kwargs["partial"] = True
        response = super().update(request, *args, **kwargs)
        response.data = {"task": response.data}
        return response

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
                queryset=self.get_queryset(),
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
        stats = services.task_stats(queryset=Task.objects.filter(user=request.user))
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
        services.user_rename(user=request.user, name=serializer.validated_data["name"])
        return self._profile(request)
