import json

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    # Warnings are bugs: the generator fails on any, and validates the result.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


ROUTES = {
    "/api/tasks": {"get", "post"},
    "/api/tasks/{id}": {"get", "put", "patch", "delete"},
    "/api/tasks/{id}/complete": {"patch"},
    "/api/tasks/stats": {"get"},
    "/api/tasks/changes": {"get"},
    "/api/tasks/batch": {"post"},
    "/api/tasks/reorder": {"post"},
    "/api/me": {"get", "put"},
    "/api/{user_id}/tasks": {"get", "post"},
    "/api/{user_id}/tasks/{id}": {"get", "put", "patch", "delete"},
    "/api/{user_id}/tasks/{id}/complete": {"patch"},
    "/api/{user_id}/tasks/stats": {"get"},
    "/api/{user_id}/tasks/changes": {"get"},
    "/api/{user_id}/tasks/batch": {"post"},
    "/api/{user_id}/tasks/reorder": {"post"},
    "/api/{user_id}/profile": {"get", "put"},
}


def test_every_route_is_described(schema):
    for path, methods in ROUTES.items():
        assert set(schema["paths"][path]) >= methods, path


def test_list_documents_every_query_parameter(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/tasks"]["get"]["parameters"]}
    assert set(parameters) >= {
        "status", "completed", "priority", "category", "tags", "due_before", "due_after",
        "overdue", "search", "sort_by", "order", "ordering", "limit", "offset", "skip",
    }  # fmt: skip
    assert parameters["sort_by"]["schema"]["enum"] == [
        "created_at", "updated_at", "due_date", "priority", "title", "position"
    ]  # fmt: skip
    assert set(parameters["priority"]["schema"]["enum"]) == {"all", "low", "medium", "high"}


def test_envelopes(schema):
    components = schema["components"]["schemas"]
    list_ref = schema["paths"]["/api/tasks"]["get"]["responses"]["200"]
    page = components[list_ref["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert set(page["required"]) == {
        "tasks", "total", "completed_count", "pending_count", "limit", "offset"
    }  # fmt: skip
    created = schema["paths"]["/api/tasks"]["post"]["responses"]["201"]
    envelope = created["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert list(components[envelope]["properties"]) == ["task"]
    assert "204" in schema["paths"]["/api/tasks/{id}"]["delete"]["responses"]


def test_errors_use_the_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]["error"]["properties"]["code"]["enum"]) >= {
        "VALIDATION_ERROR", "AUTH_REQUIRED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED",
    }  # fmt: skip
    detail = schema["paths"]["/api/{user_id}/tasks/{id}"]["get"]["responses"]
    for status in ("401", "403", "404"):
        assert detail[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


def test_every_operation_documents_the_http_servers_own_refusal_of_a_long_url(schema):
    """gunicorn answers 414 (config/gunicorn.py) to any URL too long, whatever the route."""
    operations = [
        operation
        for path, methods in schema["paths"].items()
        if path.startswith("/api/") and path != "/api/schema/"
        for operation in methods.values()
    ]
    assert operations
    assert all("414" in operation["responses"] for operation in operations)


def test_conditional_requests_are_documented(schema):
    paths = schema["paths"]

    def headers(operation, kind="parameters"):
        return {p["name"]: p for p in operation.get(kind, []) if p.get("in") == "header"}

    for path, method in [("/api/tasks", "get"), ("/api/tasks/{id}", "get")]:
        operation = paths[path][method]
        assert "If-None-Match" in headers(operation)
        assert "304" in operation["responses"]
        assert "ETag" in operation["responses"]["200"]["headers"]
    for path, method in [
        ("/api/tasks/{id}", "put"), ("/api/tasks/{id}", "patch"), ("/api/tasks/{id}", "delete"),
        ("/api/tasks/{id}/complete", "patch"),
    ]:  # fmt: skip
        operation = paths[path][method]
        assert "If-Match" in headers(operation)
        assert operation["responses"]["412"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert "410" in paths["/api/tasks/changes"]["get"]["responses"]
    assert {"since", "limit"} <= {
        p["name"] for p in paths["/api/tasks/changes"]["get"]["parameters"]
    }
    batch = paths["/api/tasks/batch"]["post"]
    assert "Idempotency-Key" in headers(batch)
    assert {"404", "409", "412"} <= set(batch["responses"])
    assert batch["requestBody"]["content"]["application/json"]["examples"]
    errors = schema["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    assert {"PRECONDITION_FAILED", "RESYNC_REQUIRED"} <= set(errors["code"]["enum"])


def test_security_schemes_are_declared(schema):
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    assert any(s.get("in") == "cookie" for s in schemes.values())


def test_create_has_an_example(schema):
    body = schema["paths"]["/api/tasks"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]


@pytest.mark.django_db
def test_schema_endpoint_serves_json(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert json.loads(response.content)["openapi"].startswith("3.")
