"""ASGI entry point of the MCP server: `uvicorn mcp_server.asgi:application`.

A second process beside the WSGI API (`manage.py mcp_http` runs it): the SDK's
Streamable HTTP transport is ASGI, and the REST API stays on sync gunicorn workers.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from mcp_server.http import build_application  # noqa: E402  (needs the apps loaded)

application = build_application()
