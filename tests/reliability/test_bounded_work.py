"""Bounded work per request: the largest input every parameter allows, and its CPU cost.

Each request runs in-process (REST through Django's test client, MCP through the SDK's
in-process client) against a user with 1,000 tasks; its CPU time (time.process_time,
the whole process: the MCP tools run in a worker thread) is printed, median of five
after a warm-up. The MCP figures here include the SDK client's validation of the
result; test_limits_http.py prints the MCP server's own CPU per call over HTTP.
Timings are printed, not asserted (they depend on the host); what is asserted is that
the largest allowed input succeeds and one step beyond is a 400 naming the limit.
The target: under 20 ms of CPU each.
"""

import json
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import TypeVar

import anyio
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp import Client
from rest_framework.test import APIClient

from mcp_server.auth import stdio_token
from mcp_server.server import server as mcp_server
from tasks.models import Task
from tests.tokens import app_token

T = TypeVar("T")

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = 1000
RUNS = 5
WORDS, WORD_LENGTH = settings.SEARCH_MAX_WORDS, settings.SEARCH_MAX_WORD_LENGTH
LONGEST_SEARCH = " ".join(f"{n}" + "w" * (WORD_LENGTH - len(str(n))) for n in range(WORDS))
MOST_TAGS = [f"{n:02d}" + "t" * (Task.TAG_MAX_LENGTH - 2) for n in range(Task.MAX_TAGS)]
LARGEST_TASK = {
    "title": "T" * Task.TITLE_MAX_LENGTH,
    "description": "D" * Task.DESCRIPTION_MAX_LENGTH,
    "priority": "high",
    "category": "work",
    "due_date": "2030-12-31",
    "tags": MOST_TAGS,
    "completed": True,
}
BODY_LIMIT = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def cpu_ms(request: Callable[..., T]) -> tuple[float, T]:
    """Median CPU milliseconds of `request` over RUNS runs after one warm-up; its last result."""
    result = request()
    times = []
    for _ in range(RUNS):
        started = time.process_time()
        result = request()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times), result


def report(capsys, what: str, ms: float) -> None:
    with capsys.disabled():
        print(f"\n  CPU per request {ms:6.2f} ms  {what}", end="")


@pytest.fixture
def owner(user):
    today = date.today()
    Task.objects.bulk_create(
        Task(
            user=user, title=f"Task {n} report", description="notes " * 20, position=n,
            priority=Task.Priority.values[n % 3], category=Task.Category.values[n % 5],
            due_date=today + timedelta(days=n % 40 - 20), tags=MOST_TAGS[: n % 4],
            completed=n % 3 == 0,
        )
        for n in range(TASKS)
    )  # fmt: skip
    return user


@pytest.fixture
def rest(owner) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {app_token(owner.id)}")
    return client


LIST_QUERIES = {
    "search: 10 words of 100 characters": {"search": LONGEST_SEARCH},
    "tags: 20 tags of 50 characters": {"tags": ",".join(MOST_TAGS)},
    "ordering: all 6 fields": {
        "ordering": "-priority,title,due_date,-position,created_at,updated_at"
    },  # fmt: skip
    "sort_by + order": {"sort_by": "due_date", "order": "desc"},
    "every filter at once": {
        "status": "pending",
        "completed": "false",
        "priority": "high",
        "category": "work",
        "due_before": "2100-01-01",
        "due_after": "2000-01-01",
        "overdue": "false",
        "search": LONGEST_SEARCH,
        "tags": ",".join(MOST_TAGS),
    },  # fmt: skip
    "limit=1000 (the whole list)": {"limit": "1000"},
    "offset: the largest integer": {"offset": str(2**31 - 1)},
}


@pytest.mark.parametrize("name", LIST_QUERIES)
def test_list_parameters_at_their_largest(rest, capsys, name):
    ms, response = cpu_ms(lambda: rest.get("/api/tasks", LIST_QUERIES[name]))
    assert response.status_code == 200, response.content[:300]
    report(capsys, f"REST GET /api/tasks, {name}", ms)
    ms, response = cpu_ms(lambda: rest.get("/api/tasks/stats", LIST_QUERIES[name]))
    assert response.status_code == 200
    report(capsys, f"REST GET /api/tasks/stats, {name}", ms)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"search": " ".join(f"w{n}" for n in range(20_000))}, "search: At most"),
        ({"search": " ".join(["w"] * (WORDS + 1))}, f"search: At most {WORDS} words."),
        ({"search": "w" * (WORD_LENGTH + 1)}, f"search: A word has at most {WORD_LENGTH}"),
        ({"tags": ",".join(f"t{n}" for n in range(Task.MAX_TAGS + 1))}, "tags: At most 20 tags."),
        ({"tags": "t" * (Task.TAG_MAX_LENGTH + 1)}, "tags: A tag has at most 50 characters."),
        ({"ordering": ",".join(["title"] * 7)}, "ordering: At most 6 fields."),
        ({"ordering": "t" * 5000}, "ordering: At most 200 characters."),
    ],
    ids=[
        "20,000 words",
        "11 words",
        "101-character word",
        "21 tags",
        "51-character tag",
        "7 ordering fields",
        "5000-character ordering",
    ],  # fmt: skip
)
def test_one_step_beyond_is_a_prompt_400_naming_the_limit(rest, capsys, params, message):
    ms, response = cpu_ms(lambda: rest.get("/api/tasks", params))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message), response.json()
    report(capsys, f"REST 400 for {message!r}", ms)


def test_writes_at_their_largest(rest, owner, capsys):
    body = json.dumps(LARGEST_TASK)
    ms, response = cpu_ms(lambda: rest.post("/api/tasks", body, content_type="application/json"))
    assert response.status_code == 201, response.content[:300]
    report(capsys, "REST POST /api/tasks, every field at its largest", ms)
    task_id = response.json()["task"]["id"]
    ms, response = cpu_ms(
        lambda: rest.put(f"/api/tasks/{task_id}", body, content_type="application/json")
    )
    assert response.status_code == 200
    report(capsys, "REST PUT /api/tasks/{id}, every field at its largest", ms)
    ms, response = cpu_ms(
        lambda: rest.patch(
            f"/api/tasks/{task_id}/complete",
            '{"completed": false}',
            content_type="application/json",
        )  # fmt: skip
    )
    assert response.status_code == 200
    report(capsys, "REST PATCH .../complete", ms)
    name = json.dumps({"name": "N" * 255})
    ms, response = cpu_ms(lambda: rest.put("/api/me", name, content_type="application/json"))
    assert response.status_code == 200
    report(capsys, "REST PUT /api/me, a 255-character name", ms)
    # The largest body: a valid task plus an ignored field up to the byte limit.
    padding = BODY_LIMIT - len(body) - 20
    largest = json.dumps({**LARGEST_TASK, "ignored": "x" * padding})
    assert len(largest) <= BODY_LIMIT
    ms, response = cpu_ms(
        lambda: rest.put(f"/api/tasks/{task_id}", largest, content_type="application/json")
    )
    assert response.status_code == 200
    report(capsys, f"REST PUT with a {len(largest):,}-byte body (the limit)", ms)
    too_big = json.dumps({**LARGEST_TASK, "ignored": "x" * BODY_LIMIT})
    ms, response = cpu_ms(
        lambda: rest.put(f"/api/tasks/{task_id}", too_big, content_type="application/json")
    )
    assert response.status_code == 413
    report(capsys, "REST 413 for a body over the limit", ms)


@pytest.fixture
def as_owner(owner):
    reset = stdio_token.set(app_token(owner.id))
    yield owner
    stdio_token.reset(reset)


def call(name: str, **arguments):
    async def main():
        async with Client(mcp_server) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(main)


def test_mcp_tools_at_their_largest(as_owner, capsys):
    cases = {
        "list_tasks, search, tags and limit at their largest": (
            "list_tasks",
            {"search": LONGEST_SEARCH, "tags": MOST_TAGS, "limit": 1000},
        ),
        "list_tasks, the whole list": ("list_tasks", {"limit": 1000}),
        "task_stats, search and tags at their largest": (
            "task_stats",
            {"search": LONGEST_SEARCH, "tags": MOST_TAGS},
        ),
        "create_task, every field at its largest": ("create_task", LARGEST_TASK),
    }
    for what, (tool, arguments) in cases.items():
        ms, result = cpu_ms(lambda tool=tool, arguments=arguments: call(tool, **arguments))
        assert not result.is_error, result.content
        report(capsys, f"MCP {what} (with the SDK client's own work)", ms)
    words = " ".join(f"w{n}" for n in range(20_000))
    ms, result = cpu_ms(lambda: call("list_tasks", search=words))
    assert result.is_error
    assert result.structured_content["error"]["code"] == "VALIDATION_ERROR"
    report(capsys, "MCP list_tasks, a 20,000-word search (refused)", ms)


# Property: whatever the input's size (up to 60 search words here, 6 times the limit),
# the SQL a list request sends stays small. The database's work follows from the
# statements it gets; a search of n words used to send 2n LIKE clauses (20,000 words:
# 62 s of Python building them, then the statement timeout).
SQL_BOUND_CHARS = 40_000
WORD = st.text(alphabet="abcxyz%_,\"' ", min_size=1, max_size=120)


@given(
    search=st.lists(WORD, max_size=60).map(" ".join),
    tags=st.lists(st.text(alphabet="ab,", min_size=1, max_size=60), max_size=40).map(",".join),
    ordering=st.lists(st.sampled_from(["title", "-priority", "due_date", "x"]), max_size=12).map(
        ",".join
    ),
)
@hypothesis_settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
def test_the_work_of_a_list_request_is_bounded_whatever_its_input(rest, search, tags, ordering):
    params = {name: value for name, value in
              {"search": search, "tags": tags, "ordering": ordering}.items() if value}  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        response = rest.get("/api/tasks", params)
    assert response.status_code in (200, 400), response.content[:300]
    assert len(queries) <= 4  # authentication, the page, its count
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert len(sql) <= SQL_BOUND_CHARS, (len(sql), params)
    # Each search word is two LIKEs (title, description), per statement: never more words.
    assert sql.upper().count("LIKE") <= 2 * 2 * WORDS, params
