"""`manage.py mcp --token ...`: serve the MCP tools over stdio, for a desktop agent."""

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from rest_framework.exceptions import APIException

from mcp_server.auth import stdio_token, user_for_token
from mcp_server.server import server


class Command(BaseCommand):
    help = (
        "Serve the MCP tools over stdio as the user of a token the REST API accepts "
        "(a Better Auth JWT, an HS256 app token or a session token). Prefer MCP_TOKEN "
        "to --token: arguments are visible to other local users."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--token", default=os.environ.get("MCP_TOKEN"))

    def handle(self, *args: Any, token: str | None, **options: Any) -> None:
        if not token:
            raise CommandError("Give the user's token with MCP_TOKEN (or --token).")
        try:
            user = user_for_token(token)  # fail fast; every call verifies it again
        except APIException as error:
            raise CommandError(f"Token refused: {error.detail}") from None
        finally:
            connections.close_all()  # this thread runs the event loop; tools use others
        self.stderr.write(f"Tasks API MCP server (stdio) for user {user.pk}")
        stdio_token.set(token)
        server.run("stdio")
