"""Keep the benchmark harness from rotting: seed a tiny data set and query the ceiling.

No timings are asserted; this runs in well under a second inside the test
transaction (rolled back), on the suite's PostgreSQL.
"""

import io
import json
import re
from pathlib import Path

import jwt
import pytest
from django.db import connection

from bench import ceiling
from bench.load import MIX, SATURATION, parse_output
from bench.seed import Sizes, seed, write_lua_data, write_lua_pool

pytestmark = pytest.mark.django_db

ISSUER = "http://localhost:3000"
TINY = Sizes(
    regular_users=3, regular_tasks=20, big_users=1, big_tasks=30, heavy_tasks=50,
    writer_users=2, delete_pool=10, sample_ids=4,
)  # fmt: skip


@pytest.fixture
def dataset(monkeypatch):
    connection.ensure_connection()
    raw = connection.connection  # psycopg, inside the test's transaction
    data = seed(raw, TINY, issuer=ISSUER, rebuild_indexes=False)
    # The ceiling shares that connection, so it sees the uncommitted rows.
    monkeypatch.setattr(ceiling._local, "conn", raw, raising=False)
    monkeypatch.setattr(ceiling, "_keys", {})
    monkeypatch.setattr(ceiling, "ISSUER", ISSUER)
    return data


def call(method, path, token=None, body=None, query=""):
    payload = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    started = []
    chunks = ceiling.application(environ, lambda status, headers: started.append(status))
    raw = b"".join(chunks)
    return int(started[0].split()[0]), json.loads(raw) if raw else None


def test_seed_counts_and_better_auth_shaped_tokens(dataset):
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM task")
        assert cur.fetchone()[0] == TINY.total_tasks
        cur.execute('SELECT count(*) FROM "user"')
        assert cur.fetchone()[0] == len(dataset.all_users)
        cur.execute('SELECT id, "publicKey" FROM jwks')
        stored = {kid: json.loads(public) for kid, public in cur.fetchall()}
    assert stored == dataset.keys
    for kid, jwk in stored.items():
        assert list(jwk) == ["alg", "crv", "x", "kty", "kid"]
        assert jwk["kid"] == kid
    token = dataset.regular[0].token
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": header["kid"]}
    key = jwt.PyJWK(stored[header["kid"]]).key
    claims = jwt.decode(token, key, algorithms=["EdDSA"], audience=ISSUER, issuer=ISSUER)
    assert list(claims) == [
        "iat", "name", "email", "emailVerified", "image", "createdAt", "updatedAt",
        "id", "sub", "exp", "iss", "aud",
    ]  # fmt: skip
    assert claims["sub"] == claims["id"] == dataset.regular[0].id
    # The writers' sampled ids stay out of the pool: the write scenarios PUT and toggle them.
    assert len(dataset.delete_pool) == TINY.delete_pool - TINY.writer_users * TINY.sample_ids
    pool_ids = {task_id for _, task_id in dataset.delete_pool}
    assert not pool_ids & {task_id for user in dataset.writers for task_id in user.task_ids}


def test_ceiling_answers_every_request_shape(dataset):
    user, other = dataset.regular[0], dataset.regular[1]
    base = f"/api/{user.id}/tasks"

    status, body = call("GET", base, user.token)
    assert status == 200
    assert body["total"] == len(body["tasks"]) == TINY.regular_tasks
    assert body["completed_count"] + body["pending_count"] == body["total"]
    assert set(body["tasks"][0]) == set(ceiling.FIELDS)
    created = [task["created_at"] for task in body["tasks"]]
    assert created == sorted(created, reverse=True)

    status, page = call("GET", base, user.token, query="limit=5&skip=5&sort_by=priority")
    assert (status, len(page["tasks"]), page["total"], page["offset"]) == (200, 5, 20, 5)
    status, _ = call("GET", base, user.token, query="search=invoice&status=pending")
    assert status == 200

    task_id = user.task_ids[0]
    status, got = call("GET", f"{base}/{task_id}", user.token)
    assert status == 200
    assert got["task"] == next(t for t in body["tasks"] if t["id"] == task_id)
    assert call("GET", f"{base}/{other.task_ids[0]}", user.token)[0] == 404
    assert call("GET", f"/api/{other.id}/tasks", user.token)[0] == 403
    assert call("GET", base)[0] == 401

    status, made = call("POST", base, user.token, {"title": "Bench", "priority": "high"})
    assert status == 201
    assert made["task"]["position"] == TINY.regular_tasks
    new = f"{base}/{made['task']['id']}"
    assert call("PUT", new, user.token, {"title": "Renamed"})[1]["task"]["title"] == "Renamed"
    assert call("PATCH", f"{new}/complete", user.token)[1]["task"]["completed"] is True
    assert call("DELETE", new, user.token) == (204, None)

    status, profile = call("GET", f"/api/{user.id}/profile", user.token)
    assert status == 200
    assert profile["stats"]["total_tasks"] == TINY.regular_tasks
    assert sum(profile["stats"]["by_priority"].values()) == TINY.regular_tasks


def test_load_data_files_and_scenarios_match_the_lua_script(dataset, tmp_path):
    write_lua_data(dataset, tmp_path / "data.lua")
    write_lua_pool(dataset.delete_pool, tmp_path / "pool.lua")
    text = (tmp_path / "data.lua").read_text()
    assert dataset.heavy.token in text
    assert text.count("token=") == len(dataset.all_users)
    lua = (Path(ceiling.__file__).parent / "load.lua").read_text()
    known = set(re.findall(r"^   (\w+) = function\(\)", lua, re.MULTILINE)) | {"delete"}
    used = {op for scenario in SATURATION for op in scenario.mix} | set(MIX)
    assert used <= known


def test_parse_output_counts_statuses_and_percentiles(tmp_path):
    out = tmp_path / "out.txt"
    lines = ["summary 2000000 4 100 0 0 0 1 0", "wrk_latency 99 9000"]
    lines += ["s get 200 1000 0", "s get 200 3000 5", "s create 201 2000 9", "s create 400 5000 12"]
    out.write_text("\n".join(lines) + "\n")
    run = parse_output(out, "app", "x")
    assert (run.requests, run.rps, run.errors) == (4, 2.0, 1)
    assert run.ops["get"].p50_ms == 1.0
    assert run.ops["create"].errors == 1
    assert run.ramp_requests == 0


def test_parse_output_leaves_the_ramp_up_out_of_latency_but_not_out_of_errors(tmp_path):
    out = tmp_path / "out.txt"
    lines = ["summary 4000000 5 100 0 0 0 1 0"]
    # op status micros sent_at (microseconds since wrk started)
    lines += ["s get 200 900000 100", "s put 500 800000 1999999", "s get 200 2000 2000000"]
    lines += ["s get 200 4000 3500000", "s toggle 200 3000 3900000"]
    out.write_text("\n".join(lines) + "\n")
    run = parse_output(out, "app", "x", ramp_seconds=2)
    assert (run.requests, run.errors, run.ramp_requests) == (5, 1, 2)
    assert set(run.ops) == {"get", "toggle"}  # put: only sent during the ramp-up
    assert run.ops["get"].count == 2
    assert run.ops["get"].max_ms == run.max_ms == 4.0


def test_the_report_gives_ed25519s_own_cost_beside_a_first_verification():
    from bench.report import check_targets, micro_lines

    token = {"function": "accounts.jwts.verify_jwt", "best_us": 0.5}
    token |= {"first_sight": {"best_us": 128.0}, "ed25519_verify": {"best_us": 117.0}}
    micro = {"token_verification": token}

    assert "of which Ed25519's verify alone takes 117.0 µs" in micro_lines(micro)[0]
    assert (
        False,
        "token first verification 128 µs (< 100; Ed25519 alone 117 µs on this host)",
    ) in (check_targets({"micro": micro}))


def test_the_write_scenarios_write_as_their_users():
    by_name = {scenario.name: scenario for scenario in SATURATION}
    assert set(by_name["writers"].mix) == {"create_writer", "put_writer", "toggle_writer", "delete"}
    assert set(by_name["write_storm"].mix) == {
        "create_storm",
        "put_storm",
        "toggle_storm",
        "delete",
    }
    assert by_name["write_storm"].lift_write_limit
    assert not by_name["writers"].lift_write_limit


def test_a_profile_folds_py_spys_stacks_by_self_time_and_layer(tmp_path):
    from bench.__main__ import parse_args
    from bench.profile import fold, profile_lines, read_stacks, write_speedscope

    assert parse_args(["--profile", "create,put"]).profile == "create,put"
    gunicorn = "run (gunicorn/workers/gthread.py:1);handle (gunicorn/workers/gthread.py:2)"
    middleware = gunicorn + ";__call__ (django/utils/deprecation.py:3)"
    raw = tmp_path / "profile-create-1.txt"
    raw.write_text(
        f"{gunicorn};select (selectors.py:4) 10\n"
        f"{middleware};process_request (django/middleware/csrf.py:5) 5\n"
        f"{middleware};dispatch (rest_framework/views.py:6);execute (psycopg/cursor.py:7) 20\n"
        f"{middleware};allow_request (ratelimit/throttling.py:8);execute (psycopg/cursor.py:7) 5\n"
        f"{middleware};dispatch (rest_framework/views.py:6);"
        "commit (django/db/backends/base/base.py:9);commit (psycopg/connection.py:10) 5\n"
        f"{middleware};render (rest_framework/renderers.py:11);dumps (orjson:0) 5\n"
        "not a stack line\n"
    )
    stacks = read_stacks([raw, tmp_path / "absent.txt"])
    found = fold(stacks)
    assert found["samples"] == 50
    assert found["top_self"][0] == ["execute (psycopg/cursor.py)", 50.0]
    assert found["layers"] == {
        "SQL": 40.0, "HTTP server (gunicorn)": 20.0, "middleware": 10.0, "rate limit": 10.0,
        "commit": 10.0, "rendering": 10.0,
    }  # fmt: skip
    out = tmp_path / "p.speedscope.json"
    write_speedscope(stacks, out, "create")
    document = json.loads(out.read_text())
    assert sum(document["profiles"][0]["weights"]) == 50
    frames = document["shared"]["frames"]
    assert {"name": "execute", "file": "psycopg/cursor.py", "line": 7} in frames
    assert "  by layer: SQL 40.0%" in "\n".join(profile_lines({"create": found}))


def test_the_saturation_table_gives_cpu_per_request_as_a_multiple_of_the_ceilings():
    from bench.report import saturation_table

    def run(rps, server, db):
        latency = {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "errors": 0, "exhausted_threads": 0}
        return {"rps": rps, "server_cpu_ms_per_req": server, "db_cpu_ms_per_req": db, **latency}

    item = {
        "scenario": "create",
        "ratio": 0.5,
        "app": run(500, 2.4, 1.2),
        "ceiling": run(1000, 0.8, 0.4),
    }
    row = saturation_table([item]).splitlines()[-1].split()
    assert row[0] == "create"
    assert row[-3:] == ["1.2", "0.4", "3.00"]
