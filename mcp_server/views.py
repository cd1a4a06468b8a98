"""POST /mcp as a Django view: one gunicorn port serves REST, docs, admin and MCP.

The SDK's Streamable HTTP transport is ASGI. a2wsgi's ASGIMiddleware runs it on an
event loop in a thread of each worker and hands it each /mcp request; the gunicorn
thread that took the request waits for the answer. Routed by Django's URLconf (the
last pattern), MCP requests pass the same middleware as REST ones (request id and
access line, HTTPS redirect, CORS, 411 for chunked bodies, the per-IP limit of
failed authentications) and REST requests pay nothing for it.
"""

import asyncio
import itertools
import os
import threading
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from config.errors import error_body

if TYPE_CHECKING:
    from a2wsgi import ASGIMiddleware
    from starlette.types import ASGIApp, Message

STARTUP_TIMEOUT = 30.0
# Set by the server for the whole exchange, not per response.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade"}


async def _lifespan(app: "ASGIApp", started: "asyncio.Future[None]") -> None:
    """Run the app's ASGI lifespan (the SDK's session manager) until the process ends.

    a2wsgi passes requests only; the SDK refuses them until its lifespan has started.
    """
    startup: asyncio.Queue[Message] = asyncio.Queue()
    startup.put_nowait({"type": "lifespan.startup"})

    async def send(message: "Message") -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message", "MCP startup failed")))

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await app(scope, startup.get, send)  # waits on an empty queue for a shutdown never sent


def _start() -> "ASGIMiddleware":
    """The MCP app on an event loop thread, its lifespan started, and a WSGI face on it.

    Imported here, not at start-up: the SDK and its dependencies are slow to import and
    take memory in every worker, which a worker that only ever serves REST never pays.
    """
    from a2wsgi import ASGIMiddleware

    from mcp_server.http import build_application

    app = build_application()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="mcp-event-loop", daemon=True).start()

    async def begin() -> None:
        started = loop.create_future()
        loop.create_task(_lifespan(app, started))
        await started

    asyncio.run_coroutine_threadsafe(begin(), loop).result(STARTUP_TIMEOUT)
    # a2wsgi types ASGI messages as TypedDicts, Starlette as plain mappings.
    return ASGIMiddleware(app, loop=loop)  # type: ignore[arg-type]


class _Server:
    """The MCP app of this process, started on its first call: an event loop thread
    would not survive gunicorn's fork of the preloaded app."""

    def __init__(self) -> None:
        self._app: ASGIMiddleware | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> "ASGIMiddleware":
        with self._lock:
            if self._app is None or self._pid != os.getpid():
                self._app, self._pid = _start(), os.getpid()
            return self._app


_server = _Server()


@csrf_exempt  # Bearer credentials only: MCP never reads cookies
def mcp_view(request: HttpRequest) -> HttpResponseBase:
    """The MCP SDK's answer to a POST /mcp, streamed through Django."""
    if request.method != "POST":
        # The SDK would hold a GET open as an event stream that a stateless server never
        # writes to, and with it one of the worker's threads.
        message = f'Method "{request.method}" not allowed.'
        response: HttpResponseBase = JsonResponse(error_body(405, message), status=405)
        response["Allow"] = "POST"
        return response
    reply: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        reply.update(status=int(status.split(" ", 1)[0]), headers=headers)

    # a2wsgi's types want a TypedDict environ and a start_response returning write().
    body = iter(_server.get()(request.META, start_response))  # type: ignore[arg-type]
    first = next(body, b"")  # runs the app up to its first body bytes: the status is known
    response = StreamingHttpResponse(itertools.chain([first], body), status=reply["status"])
    for name, value in reply["headers"]:
        if name.lower() not in HOP_BY_HOP:
            response[name] = value
    return response
