"""Every statement the API runs on a per-user table names its owner (`user_id`).

What makes the schema shardable by user (docs/deployment.md, Citus): a distributed
`task` table routes a query to one shard only when the query pins `user_id`. It is also
a second line of tenancy: a query with the owner's id in it cannot read another user's
rows. The SQL of every operation in the OpenAPI schema is recorded and checked.
"""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator

from tasks.models import Task
from tests.factories import TaskFactory

# Tables whose rows belong to one user: distributed by user_id in a sharded deployment.
OWNED_TABLES = ("task", "task_idempotency_key", "task_tombstone")
STATEMENT_ON_TABLE = re.compile(
    r'(?:\bFROM|\bUPDATE|\bINSERT\s+INTO|\bJOIN)\s+"(?P<table>\w+)"', re.IGNORECASE
)

# (method, path, body): every route of the API at least once; `{id}` is a task of the user.
OPERATIONS = [
    ("get", "/api/tasks", None),
    ("get", "/api/tasks?search=milk%20eggs&sort_by=priority&order=asc", None),
    ("get", "/api/tasks?status=pending&priority=high&category=work&tags=a,b", None),
    ("get", "/api/tasks?due_before=2030-01-01&due_after=2000-01-01&overdue=true", None),
    ("get", "/api/tasks?ordering=-priority,title&limit=1&offset=1", None),
    ("get", "/api/{user_id}/tasks?completed=true", None),
    ("post", "/api/tasks", {"title": "new", "tags": ["a"]}),
    ("post", "/api/{user_id}/tasks", {"title": "again"}),
    ("get", "/api/tasks/{id}", None),
    ("get", "/api/{user_id}/tasks/{id}", None),
    ("put", "/api/tasks/{id}", {"title": "put", "due_date": "2030-01-01"}),
    ("put", "/api/{user_id}/tasks/{id}", {"title": "put again"}),
    ("patch", "/api/tasks/{id}", {"description": "patched"}),
    ("patch", "/api/{user_id}/tasks/{id}", {"completed": True}),
    ("patch", "/api/tasks/{id}/complete", None),
    ("patch", "/api/{user_id}/tasks/{id}/complete", {"completed": False}),
    ("get", "/api/tasks/stats", None),
    ("get", "/api/{user_id}/tasks/stats?priority=high", None),
    ("get", "/api/me", None),
    ("put", "/api/me", {"name": "Renamed"}),
    ("get", "/api/{user_id}/profile", None),
    ("put", "/api/{user_id}/profile", {"name": "Again"}),
    ("get", "/api/tasks/changes", None),
    ("get", "/api/{user_id}/tasks/changes?limit=5", None),
    ("post", "/api/tasks/reorder", {"ids": ["{id}"]}),
    ("post", "/api/{user_id}/tasks/reorder", {"ids": ["{id}"]}),
    (
        "post",
        "/api/tasks/batch",
        {
            "operations": [
                {"op": "create", "task": {"title": "batched"}},
                {"op": "update", "id": "{id}", "task": {"priority": "high"}},
                {"op": "complete", "id": "{id}"},
            ]
        },
    ),
    ("post", "/api/{user_id}/tasks/batch", {"operations": [{"op": "delete", "id": "{id}"}]}),
    ("delete", "/api/{user_id}/tasks/{id}", None),
    ("delete", "/api/tasks/{id}", None),
    ("get", "/api/tasks/changes?since={cursor}", None),  # after deletes: reads tombstones
]


def owner_filter_problems(sql: str, user_id: str) -> list[str]:
    """The owned tables `sql` touches without pinning `user_id` to this user."""
    problems = []
    for match in STATEMENT_ON_TABLE.finditer(sql):
        table = match["table"]
        if table not in OWNED_TABLES:
            continue
        if re.match(r"\s*INSERT\b", sql, re.IGNORECASE):
            # INSERT ... VALUES, or a create's INSERT ... SELECT ... WHERE (the quota)
            columns, values = (re.split(r" (?:VALUES|SELECT) ", sql, maxsplit=1) + [""])[:2]
            if '"user_id"' not in columns or f"'{user_id}'" not in values:
                problems.append(f"INSERT INTO {table} without its owner")
        elif not re.search(rf'"(?:{table}"\.")?user_id" = \'{re.escape(user_id)}\'', sql):
            problems.append(f"{table} read or written without user_id = the caller")
    return problems


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(public=True)
    return {
        (method, path)
        for path, operations in schema["paths"].items()
        for method in operations
        if path.startswith("/api/")
    }


def test_every_api_operation_is_checked():
    checked = {(method, path.split("?")[0]) for method, path, _ in OPERATIONS}
    missing = schema_operations() - checked
    assert not missing, f"add these operations to OPERATIONS: {sorted(missing)}"


@pytest.mark.django_db
def test_every_statement_on_a_users_table_filters_by_the_owner(jwt_client, user):
    TaskFactory(user=user, title="milk and eggs", priority="high", category="work")
    TaskFactory()  # someone else's
    recorded = []
    cursor = ""  # the changes feed's, from its first call
    for method, template, body in OPERATIONS:
        task = TaskFactory(user=user)
        path = template.format(user_id=user.pk, id=task.pk, cursor=cursor)
        if body is not None:  # ids in bodies: the new task's
            body = json.loads(json.dumps(body).replace("{id}", str(task.pk)))
        with CaptureQueriesContext(connection) as queries:
            send = getattr(jwt_client, method)
            response = send(path, body, format="json", HTTP_IDEMPOTENCY_KEY=path + method)
        assert response.status_code < 400, (method, path, response.content[:300])
        if "/changes" in path and not cursor:
            cursor = response.json()["cursor"]
        recorded += [(method, template, query["sql"]) for query in queries.captured_queries]

    touched = {table for *_, sql in recorded for table in OWNED_TABLES if f'"{table}"' in sql}
    assert touched == set(OWNED_TABLES)  # the recording saw them all
    failures = [
        (method, template, problem, sql[:300])
        for method, template, sql in recorded
        for problem in owner_filter_problems(sql, str(user.pk))
    ]
    assert not failures, failures


@pytest.mark.django_db
def test_the_check_catches_a_query_without_the_owner(user):
    with CaptureQueriesContext(connection) as queries:
        list(Task.objects.filter(title="x"))
        list(Task.objects.filter(user_id="someone-else"))
        Task.objects.create(user=user, title="ok")
    problems = [owner_filter_problems(q["sql"], str(user.pk)) for q in queries.captured_queries]
    assert problems == [
        ["task read or written without user_id = the caller"],
        ["task read or written without user_id = the caller"],
        [],
    ]
