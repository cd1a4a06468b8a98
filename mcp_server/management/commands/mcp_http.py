"""`manage.py mcp_http`: serve the MCP tools over Streamable HTTP at /mcp."""

import os
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Serve the MCP tools over Streamable HTTP at /mcp with uvicorn (a second process "
        "beside gunicorn). Clients send the REST API's `Authorization: Bearer <token>`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("MCP_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("MCP_PORT", "8001")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("MCP_WORKERS", "1")))

    def handle(self, *args: Any, host: str, port: int, workers: int, **options: Any) -> None:
        uvicorn.run(
            "mcp_server.asgi:application",
            host=host,
            port=port,
            workers=workers,
            log_level=os.environ.get("LOG_LEVEL", "info").lower(),
            access_log=settings.DEBUG,
            # The client's address stays the socket's: RATE_LIMIT_NUM_PROXIES decides
            # which X-Forwarded-For hop to trust (mcp_server.auth.scope_client), as for REST.
            proxy_headers=False,
        )
