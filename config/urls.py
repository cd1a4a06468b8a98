from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config import errors, health
from config.docs import RedocView, SwaggerView
from mcp_server.views import mcp_view
from ratelimit.signin import admin_login

# The API first: Django tries the patterns in order for every request.
urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),  # before api/'s 404
    path("api/", include("tasks.urls")),
    path("docs", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc", RedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/login/", admin_login, name="admin-login"),  # before admin's own: throttled
    path("admin/", admin.site.urls),
    path("health", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("mcp", mcp_view, name="mcp"),  # last: REST requests never try it
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.not_found
handler500 = errors.server_error
