"""OpenAPI generation tweaks: unique operation ids for the twin mounts, slash-less
paths as the frontend calls them, and the shared error shape on every operation."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from config import gunicorn
from config.errors import CODES


class AutoSchema(SpectacularAutoSchema):
    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        # /api/{user_id}/tasks and /api/tasks share a viewset: keep their ids apart.
        return f"user_{operation_id}" if "{user_id}" in self.path else operation_id


def strip_trailing_slashes(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """Document `/api/tasks`, the form the frontend calls (a trailing slash also works)."""
    return [
        (
            path.rstrip("/") if path.startswith("/api/") and path != "/api/schema/" else path,
            *rest,
        )  # fmt: skip
        for path, *rest in endpoints
    ]


ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail", "error"],
    "properties": {
        "detail": {"type": "string", "description": "Human-readable message."},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": sorted(set(CODES.values()))},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "nullable": True,
                    "additionalProperties": True,
                    "description": "Field errors for VALIDATION_ERROR, else null.",
                },
            },
        },
    },
}

ERROR_DESCRIPTIONS = {
    "400": "VALIDATION_ERROR: invalid input, filter, sort or pagination value.",
    "401": "AUTH_REQUIRED: missing or invalid credentials.",
    "403": "FORBIDDEN: the path's user_id is not the authenticated user.",
    "404": "NOT_FOUND: no such task for this user.",
    "409": "CONFLICT: the Idempotency-Key was already used with another body.",
    "410": "RESYNC_REQUIRED: the cursor is older than the tombstones kept (30 days); "
    "sync again without `since`.",
    "412": "PRECONDITION_FAILED: the task is no longer at the `If-Match` version; nothing "
    "was written. `error.details.current` is the task as it is now (its `ETag` too).",
    "413": "VALIDATION_ERROR: request body too large.",
    "414": "VALIDATION_ERROR: the request line (method, URL and version) is longer than "
    f"{gunicorn.limit_request_line} bytes; the HTTP server refuses it before the API sees it.",
    "415": "VALIDATION_ERROR: the body must be application/json.",
    "429": "RATE_LIMITED: too many requests; see Retry-After.",
    "503": "SERVICE_UNAVAILABLE: the database is unreachable.",
}


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Attach the error shape to every API operation, for the statuses it can return."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            statuses = ["400", "401", "414", "429", "503"]
            if "{user_id}" in path:
                statuses.append("403")
            if "{id}" in path:
                statuses.append("404")
            if method in ("post", "put", "patch"):
                statuses += ["413", "415"]
            if method == "post":
                statuses.append("409")  # Idempotency-Key reused with another body
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if "If-Match" in headers or path.endswith("/batch"):
                statuses.append("412")
            if path.endswith("/changes"):
                statuses.append("410")
            if path.endswith(("/batch", "/reorder")):
                statuses.append("404")  # an operation's task, or a listed id
            for code in statuses:
                operation["responses"].setdefault(
                    code, {"description": ERROR_DESCRIPTIONS[code], "content": reference}
                )
    return result


def allow_empty_query_values(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """`?status=&search=` is the same as leaving them out: say so for every query parameter."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result


TASK_LINKS = {  # link name -> (path suffix after the collection, method)
    "GetTask": ("/{id}", "get"),
    "UpdateTask": ("/{id}", "put"),
    "PatchTask": ("/{id}", "patch"),
    "CompleteTask": ("/{id}/complete", "patch"),
    "DeleteTask": ("/{id}", "delete"),
}


def add_task_links(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """OpenAPI links from a created task to the operations on it (`id` from the response),
    for clients and for stateful testing (tests/reliability/test_schemathesis.py)."""
    paths = result.get("paths", {})
    for collection in ("/api/tasks", "/api/{user_id}/tasks"):
        created = paths.get(collection, {}).get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        parameters = {"id": "$response.body#/task/id"}
        if "{user_id}" in collection:
            parameters["user_id"] = "$request.path.user_id"
        created["links"] = {
            name: {
                "operationId": paths[collection + suffix][method]["operationId"],
                "parameters": parameters,
            }
            for name, (suffix, method) in TASK_LINKS.items()
            if method in paths.get(collection + suffix, {})
        }
    return result
