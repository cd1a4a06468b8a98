"""Task routes, mounted twice: /api/tasks and /api/{user_id}/tasks (the frontend's)."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from config import errors
from tasks.views import ProfileView, TaskViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # the frontend calls /tasks; a trailing slash works too
router.register("tasks", TaskViewSet, basename="task")

USER_ID = r"(?P<user_id>[^/]{1,255})"

urlpatterns = [
    re_path(r"^me/?$", ProfileView.as_view(), name="me"),
    re_path(rf"^{USER_ID}/profile/?$", ProfileView.as_view(), name="profile"),
    path("", include(router.urls)),
    re_path(rf"^{USER_ID}/", include((router.urls, "user"), namespace="user")),
    # Anything else under /api/ is a JSON 404, also with DEBUG on.
    re_path(r"^.*$", errors.not_found),
]
