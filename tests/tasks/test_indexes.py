"""The task table's PostgreSQL-only indexes, as migrations leave them."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tasks import services
from tasks.models import Task

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


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside a transaction
def test_profile_stats_are_read_from_the_stats_index_alone(user, other_user):
    today = timezone.localdate()
    with transaction.atomic(), connection.cursor() as cursor:
        # The test server commits asynchronously; VACUUM marks a page all-visible only
        # once the commit that wrote its rows is flushed.
        cursor.execute("SET LOCAL synchronous_commit = on")
        Task.objects.bulk_create(
            Task(
                user=owner,
                title=f"task {i}",
                completed=i % 3 == 0,
                priority=Task.Priority.values[i % 3],
                category=Task.Category.values[i % 5],
                due_date=None if i % 4 == 0 else today + timedelta(days=i % 7 - 3),
            )
            for owner in (user, other_user)
            for i in range(1000)
        )
    compiled = services._user_stats_sql(today)
    assert compiled is not None
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE task")  # the visibility map: no heap fetch needed
        with transaction.atomic():
            cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: plans as at scale
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + compiled.sql, compiled.bind(user.pk))
            plan = cursor.fetchone()[0][0]["Plan"]

    assert (plan["Node Type"], plan["Strategy"]) == ("Aggregate", "Sorted"), plan
    (scan,) = plan["Plans"]
    assert (scan["Node Type"], scan["Index Name"]) == ("Index Only Scan", "task_user_stats_idx")
    assert (scan["Actual Rows"], scan["Heap Fetches"]) == (1000, 0)
    assert services.user_task_stats(user=user)["total_tasks"] == 1000


def test_the_stats_index_replaced_its_prefix():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'task'"
            " AND indexname IN ('task_user_stats_idx', 'task_user_completed_idx')"
        )
        indexes = dict(cursor.fetchall())

    assert list(indexes) == ["task_user_stats_idx"]
    assert indexes["task_user_stats_idx"].endswith(
        "(user_id, completed, priority, category, due_date)"
    )
