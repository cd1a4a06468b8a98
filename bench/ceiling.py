"""The ceiling: the least work that gives the benchmark's requests the same answers.

A bare WSGI app, served by the same gunicorn config as the real one, that
answers every request shape the benchmark sends (list with its filters, search,
sort and pagination; get; create; PUT; toggle; delete; profile) with the same
rows and the same JSON fields, using one hand-written psycopg query per request
and orjson. As the app's lists do (tasks.serializers.task_rows), PostgreSQL writes
the ids, dates and timestamps as the API's text and the tags as JSON text that
orjson decodes, here for every answer: no value is parsed into a Python object only
to be formatted back.
Every saturation scenario is reported as a ratio to it, so the figures stay
comparable on a noisy machine.

What it keeps of the real work: verifying the EdDSA JWT (PyJWT, keys from the
`jwks` table cached per process) and checking the path's user id against `sub`.
What it leaves out on purpose: loading the user row, validation beyond the
basics, error envelopes for every case, middleware, content negotiation.

Run: `gunicorn -c config/gunicorn.py bench.ceiling:application` with
DATABASE_URL and BETTER_AUTH_URL set.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import jwt
import orjson
import psycopg
from psycopg.types.json import Jsonb
from uuid6 import uuid7

FIELDS = (
    "id", "user_id", "title", "description", "completed", "priority", "category", "due_date",
    "tags", "position", "version", "completed_at", "created_at", "updated_at",
)  # fmt: skip
TAGS = FIELDS.index("tags")


def _utc_iso(column: str) -> str:
    # DRF's DateTimeField output (the app's tasks.serializers._UtcIso): UTC as `Z`, the
    # microseconds only when there are any.
    return (
        f"to_char({column} AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', {column}) = "
        f"""{column} THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' """
        f"""ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)"""
    )


def _columns(table: str = "") -> str:
    """Each field as the API writes it, in FIELDS order (of `table`'s row, if named)."""
    t = f"{table}." if table else ""
    as_text = {
        "id": f"{t}id::text",
        "due_date": f"to_char({t}due_date, 'YYYY-MM-DD')",
        "tags": f"{t}tags::text",
        **{name: _utc_iso(t + name) for name in ("completed_at", "created_at", "updated_at")},
    }
    return ", ".join(f"{as_text.get(name, t + name)} AS {name}" for name in FIELDS)


COLUMNS = _columns()
# A list formats its page's rows only, once sorted and cut: formatting in the page's
# own SELECT would format every row of the filtered set (a 100,000-task user's too).
PAGE_COLUMNS = _columns("p")
# What a create writes (the version is the column's default).
INSERTED = ", ".join(name for name in FIELDS if name != "version")
SORTS = {
    "created_at": ("created_at", "desc"),
    "updated_at": ("updated_at", "desc"),
    "due_date": ("due_date", "asc"),
    "priority": ("CASE priority WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END", "desc"),
    "title": ("title", "asc"),
    "position": ("position", "asc"),
}
PRIORITIES = {"low", "medium", "high"}
CATEGORIES = {"work", "personal", "shopping", "health", "other"}
MAX_LIMIT = 1000
TASKS_PATH = re.compile(r"^/api/([^/]+)/tasks(?:/([^/]+)(/complete)?)?/?$")
PROFILE_PATH = re.compile(r"^/api/([^/]+)/profile/?$")

# The app's session settings that change plans (config/settings.py), so both get the same.
RANDOM_PAGE_COST = os.environ.get("DATABASE_RANDOM_PAGE_COST", "1.1") or "4"  # "": the default
OPTIONS = f"-c timezone=UTC -c random_page_cost={RANDOM_PAGE_COST}"
_local = threading.local()
_keys: dict[str, Any] = {}
_keys_lock = threading.Lock()
ISSUER = os.environ.get("BETTER_AUTH_URL", "").rstrip("/")


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, options=OPTIONS)
        _local.conn = conn
    return conn


def _query(sql: str, params: Any, *, prepare: bool | None = None) -> list[tuple]:
    try:
        with _connection().cursor() as cur:
            cur.execute(sql, params, prepare=prepare)
            return cur.fetchall() if cur.description else [(cur.rowcount,)]
    except psycopg.OperationalError:
        _local.conn = None  # reconnect on the next request
        raise


def _key(kid: str) -> Any:
    if kid not in _keys:
        with _keys_lock:
            for key_id, public in _query('SELECT id, "publicKey" FROM jwks', None):
                _keys[key_id] = jwt.PyJWK.from_json(public, algorithm="EdDSA").key
    if kid not in _keys:
        raise HttpError(401, "AUTH_REQUIRED", "unknown key")
    return _keys[kid]


def _authenticate(environ: dict, user_id: str) -> None:
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HttpError(401, "AUTH_REQUIRED", "Authentication credentials were not provided.")
    try:
        kid = jwt.get_unverified_header(token).get("kid", "")
        claims = jwt.decode(
            token, _key(kid), algorithms=["EdDSA"], audience=ISSUER or None, issuer=ISSUER or None
        )
    except jwt.InvalidTokenError as error:
        raise HttpError(401, "AUTH_REQUIRED", str(error)) from error
    if claims.get("sub") != user_id:
        raise HttpError(403, "FORBIDDEN", "You may only access your own tasks.")


def _task(row: tuple) -> dict:
    """A row of COLUMNS as the API's task: its values are the answer's already, but for
    the tags' JSON text, which orjson decodes (as tasks.serializers.task_row does)."""
    task = dict(zip(FIELDS, row, strict=True))
    task["tags"] = orjson.loads(row[TAGS])
    return task


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise HttpError(404, "NOT_FOUND", "Task not found.") from None


def _int(params: dict, name: str, default: int, minimum: int) -> int:
    raw = params.get(name, [""])[0]
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise HttpError(400, "VALIDATION_ERROR", f"invalid {name}")
    return int(raw)


def list_tasks(user_id: str, query: str) -> tuple[int, dict]:
    params = parse_qs(query)
    limit = min(_int(params, "limit", MAX_LIMIT, 1), MAX_LIMIT)
    offset = _int(params, "offset", _int(params, "skip", 0, 0), 0)
    where = ["user_id = %(user)s"]
    args: dict[str, Any] = {"user": user_id, "limit": limit, "offset": offset}
    status = params.get("status", ["all"])[0]
    if status in ("pending", "completed"):
        where.append("completed = %(completed)s")
        args["completed"] = status == "completed"
    for name, allowed in (("priority", PRIORITIES), ("category", CATEGORIES)):
        value = params.get(name, ["all"])[0]
        if value in allowed:
            where.append(f"{name} = %({name})s")
            args[name] = value
    search = params.get("search", [""])[0].strip()
    if search:  # the same SQL as Django's icontains, so the trigram indexes apply
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args["search"] = f"%{escaped}%"
        where.append(
            "(UPPER(title::text) LIKE UPPER(%(search)s) "
            "OR UPPER(description::text) LIKE UPPER(%(search)s))"
        )
    sort_by = params.get("sort_by", [""])[0]
    order = ""
    if sort_by in SORTS:
        expression, natural = SORTS[sort_by]
        direction = params.get("order", [natural])[0].upper()
        nulls = " NULLS LAST" if sort_by == "due_date" else ""
        order = f"{expression} {'DESC' if direction == 'DESC' else 'ASC'}{nulls}, "
    condition = " AND ".join(where)
    # One round trip: the counts of the filtered set, joined to the page (empty or not).
    rows = _query(
        f"SELECT c.total, c.done, {PAGE_COLUMNS} FROM "
        f"(SELECT count(*), count(*) FILTER (WHERE completed) FROM task WHERE {condition}) "
        f"AS c (total, done) LEFT JOIN LATERAL (SELECT * FROM task WHERE {condition} "
        f"ORDER BY {order}created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s) AS p ON true",
        args,
        # A prepared search would get a generic plan, blind to the pattern: through the
        # trigram indexes for every user, 5x slower for small task sets. The app never
        # prepares; psycopg prepares the other queries after 5 runs.
        prepare=False if search else None,
    )
    total, done = rows[0][0], rows[0][1]
    tasks = [_task(row[2:]) for row in rows if row[2] is not None]
    return 200, {
        "tasks": tasks,
        "total": total,
        "completed_count": done,
        "pending_count": total - done,
        "limit": limit,
        "offset": offset,
    }


def _body(environ: dict) -> dict:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        data = orjson.loads(environ["wsgi.input"].read(length) or b"{}")
    except orjson.JSONDecodeError:
        raise HttpError(400, "VALIDATION_ERROR", "Malformed JSON.") from None
    if not isinstance(data, dict):
        raise HttpError(400, "VALIDATION_ERROR", "Expected a JSON object.")
    return data


def _fields(data: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "title" in data:
        title = str(data["title"] or "").strip()
        if not 1 <= len(title) <= 200:
            raise HttpError(400, "VALIDATION_ERROR", "title: 1-200 characters.")
        fields["title"] = title
    if "description" in data:
        fields["description"] = data["description"] or None
    if data.get("priority") in PRIORITIES:
        fields["priority"] = data["priority"]
    if data.get("category") in CATEGORIES:
        fields["category"] = data["category"]
    if "due_date" in data:
        fields["due_date"] = data["due_date"] or None
    if isinstance(data.get("tags"), list):
        fields["tags"] = Jsonb(data["tags"])
    if isinstance(data.get("completed"), bool):
        fields["completed"] = data["completed"]
    return fields


def create_task(user_id: str, environ: dict) -> tuple[int, dict]:
    fields = _fields(_body(environ))
    if "title" not in fields:
        raise HttpError(400, "VALIDATION_ERROR", "title: This field is required.")
    completed = fields.get("completed", False)
    rows = _query(
        f"INSERT INTO task ({INSERTED}) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "COALESCE(MAX(position) + 1, 0), CASE WHEN %s THEN now() END, now(), now() "
        f"FROM task WHERE user_id = %s RETURNING {COLUMNS}",
        (
            uuid7(), user_id, fields["title"], fields.get("description"), completed,
            fields.get("priority", "medium"), fields.get("category", "other"),
            fields.get("due_date"), fields.get("tags", Jsonb([])),
            completed, user_id,
        ),
    )  # fmt: skip
    return 201, {"task": _task(rows[0])}


def update_task(user_id: str, task_id: uuid.UUID, environ: dict) -> tuple[int, dict]:
    fields = _fields(_body(environ))
    sets = [f"{name} = %({name})s" for name in fields]
    if "completed" in fields:
        sets.append(
            "completed_at = CASE WHEN NOT %(completed)s THEN NULL "
            "ELSE COALESCE(completed_at, now()) END"
        )
    sets.append("updated_at = now()")
    rows = _query(
        f"UPDATE task SET {', '.join(sets)} WHERE id = %(id)s AND user_id = %(user)s "
        f"RETURNING {COLUMNS}",
        {**fields, "id": task_id, "user": user_id},
    )
    if not rows:
        raise HttpError(404, "NOT_FOUND", "Task not found.")
    return 200, {"task": _task(rows[0])}


def toggle_task(user_id: str, task_id: uuid.UUID) -> tuple[int, dict]:
    rows = _query(
        "UPDATE task SET completed = NOT completed, "
        "completed_at = CASE WHEN completed THEN NULL ELSE now() END, updated_at = now() "
        f"WHERE id = %s AND user_id = %s RETURNING {COLUMNS}",
        (task_id, user_id),
    )
    if not rows:
        raise HttpError(404, "NOT_FOUND", "Task not found.")
    return 200, {"task": _task(rows[0])}


def get_task(user_id: str, task_id: uuid.UUID) -> tuple[int, dict]:
    rows = _query(f"SELECT {COLUMNS} FROM task WHERE id = %s AND user_id = %s", (task_id, user_id))
    if not rows:
        raise HttpError(404, "NOT_FOUND", "Task not found.")
    return 200, {"task": _task(rows[0])}


def delete_task(user_id: str, task_id: uuid.UUID) -> tuple[int, None]:
    (count,) = _query("DELETE FROM task WHERE id = %s AND user_id = %s", (task_id, user_id))[0]
    if not count:
        raise HttpError(404, "NOT_FOUND", "Task not found.")
    return 204, None


def profile(user_id: str) -> tuple[int, dict]:
    rows = _query(
        'SELECT u.id, u.email, u.name, u.image, s.* FROM "user" u CROSS JOIN LATERAL ('
        "SELECT count(*), count(*) FILTER (WHERE completed), "
        "count(*) FILTER (WHERE NOT completed AND due_date < CURRENT_DATE), "
        "count(*) FILTER (WHERE priority = 'low'), count(*) FILTER (WHERE priority = 'medium'), "
        "count(*) FILTER (WHERE priority = 'high'), "
        "count(*) FILTER (WHERE category = 'work'), "
        "count(*) FILTER (WHERE category = 'personal'), "
        "count(*) FILTER (WHERE category = 'shopping'), "
        "count(*) FILTER (WHERE category = 'health'), "
        "count(*) FILTER (WHERE category = 'other') "
        "FROM task WHERE user_id = u.id) AS s WHERE u.id = %s",
        (user_id,),
    )
    if not rows:
        raise HttpError(401, "AUTH_REQUIRED", "User not found.")
    uid, email, name, image, total, done, overdue, *counts = rows[0]
    return 200, {
        "user": {"id": uid, "email": email, "name": name, "image": image},
        "stats": {
            "total_tasks": total,
            "completed_tasks": done,
            "pending_tasks": total - done,
            "overdue_tasks": overdue,
            "completion_rate": round(100 * done / total, 1) if total else 0.0,
            "by_priority": dict(zip(("low", "medium", "high"), counts[:3], strict=True)),
            "by_category": dict(
                zip(("work", "personal", "shopping", "health", "other"), counts[3:], strict=True)
            ),
        },
    }


def dispatch(environ: dict) -> tuple[int, Any]:
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    match = TASKS_PATH.match(path)
    if match:
        user_id, task_id, complete = match.groups()
        _authenticate(environ, user_id)
        if task_id is None:
            if method == "GET":
                return list_tasks(user_id, environ.get("QUERY_STRING", ""))
            if method == "POST":
                return create_task(user_id, environ)
        else:
            pk = _uuid(task_id)
            if complete and method == "PATCH":
                return toggle_task(user_id, pk)
            if not complete and method == "GET":
                return get_task(user_id, pk)
            if not complete and method in ("PUT", "PATCH"):
                return update_task(user_id, pk, environ)
            if not complete and method == "DELETE":
                return delete_task(user_id, pk)
        raise HttpError(405, "METHOD_NOT_ALLOWED", f'Method "{method}" not allowed.')
    match = PROFILE_PATH.match(path)
    if match and method == "GET":
        _authenticate(environ, match.group(1))
        return profile(match.group(1))
    raise HttpError(404, "NOT_FOUND", "Not found.")


def application(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    """The WSGI entry point."""
    try:
        status, payload = dispatch(environ)
    except HttpError as error:
        status = error.status
        payload = {
            "detail": error.message,
            "error": {"code": error.code, "message": error.message, "details": None},
        }
    reason = {200: "OK", 201: "Created", 204: "No Content"}.get(status, "Error")
    if payload is None:
        start_response(f"{status} {reason}", [("Content-Length", "0")])
        return [b""]
    body = orjson.dumps(payload)
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
