"""The zero-configuration default (SQLite file, DEBUG on) works end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from io import StringIO
from django.core.management import call_command
from rest_framework.test import APIClient

out = StringIO()
call_command("dev_token", "newcomer@example.com", stdout=out, stderr=StringIO())
client = APIClient(HTTP_AUTHORIZATION="Bearer " + out.getvalue().strip())
created = client.post("/api/tasks", {"title": "a", "tags": ["x", "y"], "priority": "high",
                                     "due_date": "2020-01-01"}, format="json")
task_id = created.json()["task"]["id"]
client.post("/api/tasks", {"title": "b", "tags": ["y"]}, format="json")
got = client.get(f"/api/tasks/{task_id}").json()["task"]
statuses = {
    "get": [got["tags"], got["due_date"], got["id"] == created.json()["task"]["id"]],
    "create": created.status_code,
    "tags": [t["title"] for t in client.get("/api/tasks", {"tags": "x,y"}).json()["tasks"]],
    "search": client.get("/api/tasks", {"search": "B"}).json()["total"],
    "sort": [t["title"] for t in client.get("/api/tasks", {"sort_by": "priority"}).json()["tasks"]],
    "overdue": client.get("/api/tasks", {"overdue": "true"}).json()["total"],
    "toggle": client.patch(f"/api/tasks/{task_id}/complete").json()["task"]["completed"],
    "stats": client.get("/api/me").json()["stats"]["completed_tasks"],
    "put": [
        value for key, value in client.put(
            f"/api/tasks/{task_id}",
            {"title": "c", "tags": ["z"], "due_date": "2027-02-01", "completed": False},
            format="json",
        ).json()["task"].items()
        if key in ("title", "tags", "due_date", "completed", "completed_at")
    ],
    "delete": client.delete(f"/api/tasks/{task_id}").status_code,
}
# Sync (issue 19): versions, conditional requests, the changes feed, batch and reorder.
first = client.get("/api/tasks/changes").json()
listed = client.get("/api/tasks")
b = listed.json()["tasks"][0]
statuses["sync"] = {
    "versions": [t["version"] for t in listed.json()["tasks"]],
    "list_304": client.get("/api/tasks", HTTP_IF_NONE_MATCH=listed["ETag"]).status_code,
    "stale": client.patch(f"/api/tasks/{b['id']}", {"title": "x"}, format="json",
                          HTTP_IF_MATCH='"9"').status_code,
    "matching": client.patch(f"/api/tasks/{b['id']}", {"title": "b2"}, format="json",
                             HTTP_IF_MATCH='"1"').json()["task"]["version"],
    "list_200": client.get("/api/tasks", HTTP_IF_NONE_MATCH=listed["ETag"]).status_code,
    "batch": [r["status"] for r in client.post("/api/tasks/batch", {"operations": [
        {"op": "create", "task": {"title": "c"}}, {"op": "complete", "id": b["id"]}]},
        format="json").json()["results"]],
    "failed_batch": client.post("/api/tasks/batch", {"operations": [
        {"op": "create", "task": {"title": "never"}},
        {"op": "delete", "id": b["id"], "if_match": 1}]}, format="json").status_code,
}
c = next(t for t in client.get("/api/tasks").json()["tasks"] if t["title"] == "c")
statuses["sync"]["c_position"] = c["position"]
statuses["sync"]["reorder"] = [t["title"] for t in client.post(
    "/api/tasks/reorder", {"ids": [c["id"], b["id"]]}, format="json").json()["tasks"]]
listed = client.get("/api/tasks").json()["tasks"]
statuses["sync"]["positions"] = sorted(t["position"] for t in listed)
changes = client.get("/api/tasks/changes", {"since": first["cursor"]}).json()
statuses["sync"]["changes"] = sorted(t["title"] for t in changes["tasks"])
client.delete(f"/api/tasks/{c['id']}")
statuses["sync"]["deleted"] = client.get(
    "/api/tasks/changes", {"since": changes["cursor"]}).json()["deleted"] == [c["id"]]
print(json.dumps(statuses))
"""


def test_api_works_on_the_embedded_sqlite_default(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DJANGO_"))
    }
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "config.settings"}  # fmt: skip

    def run(*args):
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    migrate = run("manage.py", "migrate", "--no-input")
    assert migrate.returncode == 0, migrate.stderr
    result = run("-c", SCRIPT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "get": [["x", "y"], "2020-01-01", True],
        "create": 201,
        "tags": ["a"],
        "search": 1,
        "sort": ["a", "b"],
        "overdue": 1,
        "toggle": True,
        "stats": 1,
        "put": ["c", False, "2027-02-01", ["z"], None],
        "delete": 204,
        "sync": {
            "versions": [1],
            "list_304": 304,
            "stale": 412,
            "matching": 2,
            "list_200": 200,
            "batch": [201, 200],
            "failed_batch": 412,
            "c_position": 2,
            "reorder": ["c", "b2"],
            "positions": [0, 1],
            "changes": ["b2", "c"],
            "deleted": True,
        },
    }
