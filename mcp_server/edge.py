"""The edge of the MCP endpoint: what reaches the SDK, and JSON for every refusal.

- Only `POST /mcp` reaches the SDK (stateless JSON mode has no use for the GET stream,
  which would stay open for ever): other methods are a prompt 405, other paths a 404.
- A body is read whole up to MAX_REQUEST_BODY_BYTES (413 beyond) and must be strict
  JSON, as REST bodies must (config.parsers): no duplicate keys, no NaN; else a
  JSON-RPC parse error.
- Anything the SDK (or Starlette) answers as plain text ("Invalid Host header", ...)
  becomes the API's JSON error shape.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.errors import error_body
from config.parsers import loads_strict

PARSE_ERROR = -32700
ALLOW = "POST, OPTIONS"


async def send_json(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def send_error(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    await send_json(send, status, error_body(status, message), headers)


class EdgeMiddleware:
    """Outermost: methods and paths, and JSON in place of any plain-text error."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        if scope["path"].rstrip("/") != self.path:
            await send_error(send, 404, "Not found.")
            return
        method = scope["method"]
        if method == "OPTIONS":
            await send({"type": "http.response.start", "status": 204,
                        "headers": [(b"allow", ALLOW.encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return
        if method != "POST":
            message = f"Method {method} not allowed: send JSON-RPC messages with POST."
            await send_error(send, 405, message, {"Allow": ALLOW})
            return
        await self.app(scope, receive, _json_errors(send))


def _json_errors(send: Send) -> Callable[[Message], Awaitable[None]]:
    """`send`, with a non-JSON error response replaced by the API's error shape."""
    held: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] >= 400 and not content_type.startswith(b"application/json"):
                held.update(status=message["status"], body=b"")
                return
        elif message["type"] == "http.response.body" and held:
            held["body"] += message.get("body", b"")
            if not message.get("more_body", False):
                text = held["body"][:200].decode("utf-8", "replace").strip().rstrip(".")
                await send_error(send, held["status"], f"{text or 'Request failed'}.")
            return
        await send(message)

    return wrapped


class StrictJSONBodyMiddleware:
    """Reads the body (bounded), refuses what REST's parser refuses, then replays it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await send_error(send, 413, f"Request body exceeds {self.max_bytes} bytes.")
                return
            if not message.get("more_body", False):
                break
        try:
            loads_strict(bytes(body))
        except ValueError as error:
            rpc = {"jsonrpc": "2.0", "id": None,
                   "error": {"code": PARSE_ERROR, "message": str(error)}}  # fmt: skip
            await send_json(send, 400, rpc)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # a disconnect, while the SDK answers
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
