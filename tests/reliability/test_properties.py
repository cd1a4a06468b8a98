"""Property tests: the list's filters, search, sort and pagination against a plain-Python
reference; tenancy under random operations by several users on both mounts."""

import datetime
from contextlib import contextmanager
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from uuid6 import uuid7

from tasks.models import Task
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Every test runs at a fixed noon (the clock ticks on from there): the API's "today" is
# TODAY, also in a run that crosses midnight.
NOON = datetime.datetime(2026, 6, 15, 12, tzinfo=datetime.UTC)
TODAY = NOON.date()
BASE_TIME = NOON - datetime.timedelta(days=1)
PRIORITIES = ["low", "medium", "high"]
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3}
CATEGORIES = ["work", "personal", "shopping", "health", "other"]
TAGS = ["a", "b", "c"]
SORT_FIELDS = ["created_at", "updated_at", "due_date", "priority", "title", "position"]
# Letters of both cases plus LIKE's wildcards and its escape: search must take them literally.
TEXT = st.text(alphabet="abAB%_\\", min_size=1, max_size=5)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _at_noon():
    with time_machine.travel(NOON, tick=True):
        assert timezone.localdate() == TODAY
        yield


@contextmanager
def rolled_back():
    """Each Hypothesis example starts from the same database: undo its writes."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


TASKS = st.lists(
    st.fixed_dictionaries(
        {
            "title": TEXT,
            "description": st.none() | TEXT,
            "completed": st.booleans(),
            "priority": st.sampled_from(PRIORITIES),
            "category": st.sampled_from(CATEGORIES),
            "due_date": st.none() | st.integers(-3, 3).map(days),
            "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=3),
            "position": st.integers(0, 4),
            # Few distinct instants: ties must fall back to the id, like the API promises.
            "created_at": st.integers(0, 4).map(
                lambda m: BASE_TIME + datetime.timedelta(minutes=m)
            ),
            "updated_at": st.integers(0, 4).map(lambda m: BASE_TIME + datetime.timedelta(hours=m)),
        }
    ),
    max_size=14,
)

ORDERINGS = st.one_of(
    st.just({}),
    st.builds(
        lambda field, order: {"sort_by": field, **({"order": order} if order else {})},
        st.sampled_from(SORT_FIELDS),
        st.sampled_from([None, "asc", "desc"]),
    ),
    st.lists(
        st.builds(lambda f, d: d + f, st.sampled_from(SORT_FIELDS), st.sampled_from(["", "-"])),
        min_size=1, max_size=3,
    ).map(lambda terms: {"ordering": ",".join(terms)}),
)  # fmt: skip

FILTERS = {
    "status": st.sampled_from(["all", "pending", "completed"]),
    "completed": st.sampled_from(["true", "false"]),
    "priority": st.sampled_from(["all", *PRIORITIES]),
    "category": st.sampled_from(["all", *CATEGORIES]),
    "tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2).map(",".join),
    "due_before": st.integers(-3, 3).map(lambda n: days(n).isoformat()),
    "due_after": st.integers(-3, 3).map(lambda n: days(n).isoformat()),
    "overdue": st.sampled_from(["true", "false"]),
    # Short terms, so that they often match (or match only when case is ignored).
    "search": st.lists(
        st.text(alphabet="abAB%_\\", min_size=1, max_size=2), min_size=1, max_size=2
    ).map(" ".join),
    "limit": st.integers(1, 6),
    "offset": st.integers(0, 8),
}
# A few parameters at a time: with all of them, most results would be empty.
PARAMS = st.lists(st.sampled_from(list(FILTERS)), unique=True, max_size=3).flatmap(
    lambda names: st.fixed_dictionaries({name: FILTERS[name] for name in names})
)


# The reference: what the API promises, in plain Python.
def reference_filter(tasks: list[Task], params: dict) -> list[Task]:
    def keep(task: Task) -> bool:
        overdue = not task.completed and task.due_date is not None and task.due_date < TODAY
        checks = [
            params.get("status") != "pending" or not task.completed,
            params.get("status") != "completed" or task.completed,
            "completed" not in params or task.completed == (params["completed"] == "true"),
            params.get("priority", "all") in ("all", task.priority),
            params.get("category", "all") in ("all", task.category),
            all(tag in task.tags for tag in params.get("tags", "").split(",") if tag),
            "due_before" not in params
            or (task.due_date is not None and task.due_date.isoformat() <= params["due_before"]),
            "due_after" not in params
            or (task.due_date is not None and task.due_date.isoformat() >= params["due_after"]),
            "overdue" not in params or overdue == (params["overdue"] == "true"),
            all(
                term.upper() in task.title.upper()
                or term.upper() in (task.description or "").upper()
                for term in params.get("search", "").split()
            ),
        ]
        return all(checks)

    return [task for task in tasks if keep(task)]


def reference_order(tasks: list[Task], params: dict) -> list[Task]:
    if "sort_by" in params:
        field = params["sort_by"]
        natural = "asc" if field in ("due_date", "title", "position") else "desc"
        direction = params.get("order", natural)
        terms = [("-" if direction == "desc" else "") + field]
    elif "ordering" in params:
        terms = params["ordering"].split(",")
    else:
        terms = ["-created_at"]
    ordered = list(tasks)
    for term in reversed([*terms, "-created_at", "-id"]):  # stable sorts, last key first
        field, descending = term.lstrip("-"), term.startswith("-")
        if field == "due_date":  # no due date sorts last either way
            ordered.sort(
                key=lambda t: (t.due_date is not None, t.due_date or TODAY), reverse=True
            ) if descending else ordered.sort(
                key=lambda t: (t.due_date is None, t.due_date or TODAY)
            )
        else:
            value = (
                (lambda t: PRIORITY_RANK[t.priority])
                if field == "priority"
                else (lambda t, f=field: getattr(t, f))
            )
            ordered.sort(key=value, reverse=descending)
    return ordered


def make_tasks(user, rows: list[dict]) -> list[Task]:
    tasks = [
        Task(
            id=uuid7(),
            user=user,
            **row,
            completed_at=row["created_at"] if row["completed"] else None,
        )  # fmt: skip
        for row in rows
    ]
    Task.objects.bulk_create(tasks)
    # auto_now overwrote updated_at on insert: put the generated values back.
    for task, row in zip(tasks, rows, strict=True):
        Task.objects.filter(pk=task.pk).update(updated_at=row["updated_at"])
        task.updated_at = row["updated_at"]
    return tasks


@SETTINGS
@given(rows=TASKS, others=TASKS, params=PARAMS, ordering=ORDERINGS, mounted=st.booleans())
def test_list_matches_the_reference(auth_client, user, other_user, rows, others, params,
                                    ordering, mounted):  # fmt: skip
    params = {**params, **ordering}
    with rolled_back():
        tasks = make_tasks(user, rows)
        make_tasks(other_user, others)
        url = reverse("user:task-list", args=[user.pk]) if mounted else reverse("task-list")
        response = auth_client.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()

        matching = reference_order(reference_filter(tasks, params), params)
        offset, limit = params.get("offset", 0), params.get("limit", 1000)
        assert [t["id"] for t in body["tasks"]] == [str(t.pk) for t in matching][
            offset : offset + limit
        ]
        completed = sum(t.completed for t in matching)
        assert (body["total"], body["completed_count"], body["pending_count"]) == (
            len(matching), completed, len(matching) - completed
        )  # fmt: skip
        assert (body["limit"], body["offset"]) == (limit, offset)


@SETTINGS
@given(rows=TASKS, others=TASKS, params=PARAMS)
def test_stats_match_the_reference(auth_client, user, other_user, rows, others, params):
    params = {k: v for k, v in params.items() if k not in ("limit", "offset")}
    with rolled_back():
        tasks = make_tasks(user, rows)
        make_tasks(other_user, others)
        body = auth_client.get(reverse("task-stats"), params).json()
        matching = reference_filter(tasks, params)
        total, completed = len(matching), sum(t.completed for t in matching)
        assert body == {
            "total_tasks": total,
            "completed_tasks": completed,
            "pending_tasks": total - completed,
            "overdue_tasks": sum(
                not t.completed and t.due_date is not None and t.due_date < TODAY for t in matching
            ),
            "completion_rate": round(100 * completed / total, 1) if total else 0.0,
            "by_priority": {p: sum(t.priority == p for t in matching) for p in PRIORITIES},
            "by_category": {c: sum(t.category == c for t in matching) for c in CATEGORIES},
        }


# Tenancy: several users, random operations, a model of who owns what.
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["list", "search", "stats", "profile", "retrieve", "put", "patch",
                         "toggle", "delete", "create"]),
        st.integers(0, 2),  # actor
        st.integers(0, 2),  # whose id goes in /api/{user_id}/... (the actor's, or not)
        st.integers(0, 11),  # target task
        st.booleans(),  # mounted under /api/{user_id}/
    ),
    min_size=1, max_size=25,
)  # fmt: skip


@SETTINGS
@given(operations=OPERATIONS)
def test_no_user_ever_reaches_another_users_tasks(db, operations):
    with rolled_back():
        users = [UserFactory() for _ in range(3)]
        clients = [APIClient() for _ in users]
        for client, user in zip(clients, users, strict=True):
            client.force_authenticate(user)  # type: ignore[arg-type]  # DRF takes any user object
        # The model: task id -> (owner index, title, completed); None once deleted.
        tasks: dict[str, list[Any] | None] = {}
        for n in range(12):
            task = Task.objects.create(user=users[n % 3], title=f"task{n}x")
            tasks[str(task.pk)] = [n % 3, task.title, False]
        ids = list(tasks)

        for step, (op, actor, path_user, target, mounted) in enumerate(operations):
            client, task_id = clients[actor], ids[target]
            prefix = f"/api/{users[path_user].pk}" if mounted else "/api"
            forbidden = mounted and path_user != actor
            live = tasks.get(task_id)
            mine = live is not None and live[0] == actor
            response = run(client, op, prefix, task_id, live, step)
            if forbidden:
                assert response.status_code == 403, (op, response.content)
                assert response.json()["error"]["code"] == "FORBIDDEN"
            elif op in ("list", "search", "stats", "profile"):
                expect_reads(op, response, tasks, actor, live)
            elif op == "create":
                assert response.status_code == 201
                created = response.json()["task"]
                assert created["user_id"] == users[actor].pk
                tasks[created["id"]] = [actor, created["title"], False]
            elif not mine:
                assert response.status_code == 404, (op, response.content)
                assert "title" not in response.content.decode()
            else:
                assert live is not None
                assert response.status_code in (200, 204), (op, response.content)
                if op == "delete":
                    tasks[task_id] = None
                elif op in ("put", "patch"):
                    live[1] = response.json()["task"]["title"]
                elif op == "toggle":
                    live[2] = not live[2]
                else:
                    assert response.json()["task"]["id"] == task_id

        rows = {str(t.pk): [users.index(t.user), t.title, t.completed] for t in Task.objects.all()}
        assert rows == {k: v for k, v in tasks.items() if v is not None}, operations


def run(client, op, prefix, task_id, live, step):
    detail = f"{prefix}/tasks/{task_id}"
    title = f"step{step}x"
    if op == "list":
        return client.get(f"{prefix}/tasks")
    if op == "search":  # for the target's own title, whoever owns it
        return client.get(f"{prefix}/tasks", {"search": live[1] if live else "task"})
    if op == "stats":
        return client.get(f"{prefix}/tasks/stats")
    if op == "profile":
        return client.get(f"{prefix}/profile" if prefix != "/api" else "/api/me")
    if op == "retrieve":
        return client.get(detail)
    if op == "put":
        return client.put(detail, {"title": title, "priority": "low"}, format="json")
    if op == "patch":
        return client.patch(detail, {"title": title}, format="json")
    if op == "toggle":
        return client.patch(f"{detail}/complete")
    if op == "delete":
        return client.delete(detail)
    return client.post(f"{prefix}/tasks", {"title": title}, format="json")


def expect_reads(op, response, tasks, actor, target):
    assert response.status_code == 200, response.content
    body = response.json()
    own = {k: v for k, v in tasks.items() if v is not None and v[0] == actor}
    if op == "list":
        assert {t["id"] for t in body["tasks"]} == set(own)
        assert body["total"] == len(own)
        assert body["completed_count"] == sum(v[2] for v in own.values())
    elif op == "search":
        found = {t["id"] for t in body["tasks"]}
        assert found <= set(own)  # never another user's, whatever it matches
        if target is not None and target[0] == actor:
            assert any(own[i][1] == target[1] for i in found)
    elif op == "stats":
        assert body["total_tasks"] == len(own)
        assert body["completed_tasks"] == sum(v[2] for v in own.values())
    else:
        assert body["stats"]["total_tasks"] == len(own)
