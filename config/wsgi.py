"""WSGI entry point (gunicorn serves `config.wsgi:application`): Django, with the MCP
server's Streamable HTTP endpoint mounted at /mcp (mcp_server/wsgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_wsgi_application()

from mcp_server.wsgi import MCPMount  # noqa: E402  (needs the apps loaded)

application = MCPMount(django_application)
