"""POST /mcp inside the WSGI app: one gunicorn port serves REST, docs, admin and MCP.

The SDK's Streamable HTTP transport is ASGI. a2wsgi's ASGIMiddleware runs it on an
event loop in a thread of each worker and hands each /mcp request to that loop; the
gunicorn thread that accepted the request waits for its answer. Every other path goes
straight to Django, so REST requests pay one string comparison and nothing else.
"""

import asyncio
import os
import threading
from collections.abc import Iterable
from typing import Any

from a2wsgi import ASGIMiddleware
from starlette.types import ASGIApp, Message

from mcp_server.http import PATH, build_application

STARTUP_TIMEOUT = 30.0

WSGIApp = Any  # (environ, start_response) -> Iterable[bytes]


async def _lifespan(app: ASGIApp, started: "asyncio.Future[None]") -> None:
    """Run the app's ASGI lifespan (the SDK's session manager) until the process ends.

    a2wsgi passes requests only; the SDK refuses them until its lifespan has started.
    """
    startup: asyncio.Queue[Message] = asyncio.Queue()
    startup.put_nowait({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message", "MCP startup failed")))

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await app(scope, startup.get, send)  # waits on an empty queue for a shutdown never sent


def _start(app: ASGIApp) -> ASGIMiddleware:
    """An event loop thread with the app's lifespan started, and the WSGI face on it."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="mcp-event-loop", daemon=True).start()

    async def begin() -> None:
        started = loop.create_future()
        loop.create_task(_lifespan(app, started))
        await started

    asyncio.run_coroutine_threadsafe(begin(), loop).result(STARTUP_TIMEOUT)
    return ASGIMiddleware(app, loop=loop)


class MCPMount:
    """WSGI app: `/mcp` to the MCP server, everything else to `django_app`.

    The MCP side starts in each worker on its first /mcp request: an event loop thread
    would not survive gunicorn's fork of the preloaded app.
    """

    def __init__(self, django_app: WSGIApp) -> None:
        self.django_app = django_app
        self._mcp: ASGIMiddleware | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return self.mcp()(environ, start_response)
        return self.django_app(environ, start_response)

    def mcp(self) -> ASGIMiddleware:
        with self._lock:
            if self._mcp is None or self._pid != os.getpid():
                self._mcp, self._pid = _start(build_application()), os.getpid()
            return self._mcp
