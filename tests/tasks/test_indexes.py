"""The task table's PostgreSQL-only indexes, as migrations leave them."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

GIN_INDEXES = ["task_description_trgm_idx", "task_tags_gin_idx", "task_title_trgm_idx"]


def test_gin_indexes_have_no_pending_list():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s) ORDER BY relname",
            [GIN_INDEXES],
        )
        options = dict(cursor.fetchall())

    assert sorted(options) == GIN_INDEXES
    assert all(options[name] == ["fastupdate=off"] for name in GIN_INDEXES), options


def test_searched_expressions_have_finer_statistics():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attstattarget FROM pg_attribute a JOIN pg_class c"
            " ON c.oid = a.attrelid WHERE c.relname = ANY(%s) AND a.attnum = 1",
            [["task_title_trgm_idx", "task_description_trgm_idx"]],
        )
        targets = dict(cursor.fetchall())

    assert targets == {"task_title_trgm_idx": 1000, "task_description_trgm_idx": 1000}
