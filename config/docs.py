"""The API docs pages (Swagger UI, Redoc), answering OPTIONS like every other route.

drf-spectacular's views render with TemplateHTMLRenderer, which has no template for
DRF's OPTIONS metadata (a 500). Swagger UI is the split view: its start-up script is
a file of its own, so the page's Content-Security-Policy needs no inline script.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

ALLOW = "GET, HEAD, OPTIONS"


class _Options:
    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse(status=204, headers={"Allow": ALLOW})


# DRF's stubs want a DRF Response from options(); DRF takes any HttpResponse.
class SwaggerView(_Options, SpectacularSwaggerSplitView):  # type: ignore[misc]
    pass


class RedocView(_Options, SpectacularRedocView):  # type: ignore[misc]
    pass
