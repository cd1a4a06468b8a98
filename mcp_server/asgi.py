"""The MCP tools over Streamable HTTP at /mcp: `uvicorn mcp_server.asgi:application`.

A separate ASGI process (`manage.py mcp_http`) beside the WSGI API: the SDK's
transport is Starlette, and the REST workers stay sync gunicorn processes.
Stateless, JSON responses (no sessions to share, so any number of workers or
replicas can sit behind one load balancer); every request carries its token.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402  (after django.setup())
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402
from starlette.types import ASGIApp  # noqa: E402

from mcp_server.auth import BearerAuthMiddleware  # noqa: E402
from mcp_server.server import server  # noqa: E402

PATH = "/mcp"


def transport_security() -> TransportSecuritySettings:
    """Host and Origin checks from Django's own settings (DNS-rebinding protection)."""
    hosts = settings.ALLOWED_HOSTS
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        allowed_hosts=[pattern for host in hosts for pattern in (host, f"{host}:*")],
        allowed_origins=list(settings.CORS_ALLOWED_ORIGINS),
    )


def build_application() -> ASGIApp:
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        transport_security=transport_security(),
    )
    return BearerAuthMiddleware(app)


application = build_application()
