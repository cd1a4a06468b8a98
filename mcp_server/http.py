"""The Streamable HTTP app: the SDK's Starlette app at /mcp behind the edge checks
(mcp_server.edge) and BearerAuthMiddleware.

Stateless with JSON responses: no sessions to share, so any number of workers or
replicas can serve behind one load balancer, and every request carries its token.
"""

from django.conf import settings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from mcp_server.auth import BearerAuthMiddleware
from mcp_server.edge import EdgeMiddleware, StrictJSONBodyMiddleware
from mcp_server.server import server

PATH = "/mcp"


def transport_security() -> TransportSecuritySettings:
    """The SDK's Host/Origin checks (DNS-rebinding protection) from Django's own settings."""
    hosts = settings.ALLOWED_HOSTS
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        allowed_hosts=[pattern for host in hosts for pattern in (host, f"{host}:*")],
        allowed_origins=list(settings.CORS_ALLOWED_ORIGINS),
    )


def build_application() -> ASGIApp:
    """The ASGI app; build it once per process (the SDK's session manager runs once)."""
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        transport_security=transport_security(),
    )
    body_checked = StrictJSONBodyMiddleware(app, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return EdgeMiddleware(BearerAuthMiddleware(body_checked), PATH)
