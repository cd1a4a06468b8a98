"""The task quota: checked inside the create's INSERT against the count the database keeps
per user (migration 0007), exact whoever writes and however creates race."""

import json
import uuid

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from tasks import services
from tasks.models import Task
from tests.accounts.test_migrations import _connect, _url, migrate, new_database  # noqa: F401
from tests.factories import TaskFactory, UserFactory
from tests.tasks.test_concurrency import run_in_threads


def kept_count(user) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tasks FROM task_owner_count WHERE user_id = %s", [user.pk])
        row = cursor.fetchone()
    return None if row is None else row[0]


@pytest.mark.django_db
class TestTheKeptCount:
    def test_follows_every_writer(self, user, other_user):
        tasks = TaskFactory.create_batch(3, user=user)  # the ORM's inserts
        services.task_create(user=user, title="api")
        assert kept_count(user) == Task.objects.filter(user=user).count() == 4
        services.task_delete(user=user, pk=tasks[0].pk)
        Task.objects.filter(pk=tasks[1].pk).delete()
        assert kept_count(user) == 2
        Task.objects.filter(pk=tasks[2].pk).update(user=other_user)  # moved to another user
        assert (kept_count(user), kept_count(other_user)) == (1, 1)
        Task.objects.filter(pk=tasks[2].pk).update(title="renamed")  # not a move
        assert (kept_count(user), kept_count(other_user)) == (1, 1)

    def test_plain_sql_and_an_insert_that_conflicts(self, user):
        task = TaskFactory(user=user)
        copy = "INSERT INTO task SELECT (jsonb_populate_record(task, %s)).* FROM task WHERE id = %s"
        with connection.cursor() as cursor:
            cursor.execute(copy, [json.dumps({"id": str(uuid.uuid4())}), task.pk])
            assert kept_count(user) == 2
            cursor.execute(copy + " ON CONFLICT DO NOTHING", ["{}", task.pk])  # inserts none
            assert cursor.rowcount == 0
        assert kept_count(user) == 2

    def test_deleting_the_user_deletes_their_count(self, user):
        TaskFactory.create_batch(2, user=user)
        with connection.cursor() as cursor:
            cursor.execute('DELETE FROM "user" WHERE id = %s', [user.pk])  # as Better Auth does
        assert kept_count(user) is None


@pytest.mark.django_db(transaction=True)  # no deferred foreign key checks pending
def test_a_truncate_empties_it():
    user = UserFactory()
    TaskFactory(user=user)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE task")
    assert kept_count(user) is None
    services.task_create(user=user, title="after")
    assert kept_count(user) == 1


@pytest.mark.django_db
def test_the_quota_counts_deletions_and_is_per_user(user, other_user, settings):
    """In one transaction (the test's): a refused create leaves it usable."""
    settings.TASK_QUOTA_PER_USER = 2
    first = services.task_create(user=user, title="1")
    services.task_create(user=user, title="2")
    with pytest.raises(services.QuotaExceeded):
        services.task_create(user=user, title="3", position=5)  # an explicit position too
    services.task_create(user=other_user, title="theirs")
    services.task_delete(user=user, pk=first.pk)
    assert services.task_create(user=user, title="3").position == 2
    assert Task.objects.filter(user=user).count() == 2


@pytest.mark.django_db
def test_a_refused_create_in_a_transaction_leaves_it_usable(auth_client, user, settings):
    settings.TASK_QUOTA_PER_USER = 1
    TaskFactory(user=user)
    response = auth_client.post(
        reverse("task-list"), {"title": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "QUOTA_EXCEEDED"
    settings.TASK_QUOTA_PER_USER = 2
    response = auth_client.post(
        reverse("task-list"), {"title": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_racing_creates_never_pass_the_quota(settings):
    settings.TASK_QUOTA_PER_USER = 5
    user = UserFactory()
    TaskFactory(user=user, position=0)
    TaskFactory(user=user, position=1)

    def create():
        client = APIClient()
        client.force_authenticate(user=user)  # type: ignore[arg-type]  # DRF takes any user object
        return client.post(reverse("task-list"), {"title": "race"}, format="json").status_code

    statuses = run_in_threads(12, create)
    assert sorted(statuses) == [201] * 3 + [409] * 9
    assert Task.objects.filter(user=user).count() == kept_count(user) == 5
    positions = list(Task.objects.filter(user=user).values_list("position", flat=True))
    assert len(set(positions)) == 5


@pytest.mark.django_db
def test_the_migration_counts_existing_tasks_and_reverses(new_database):  # noqa: F811
    name = new_database()
    migrate(_url(name), "tasks", "0006")
    with _connect(name) as conn:
        for user_id, tasks in (("u1", 3), ("u2", 1)):
            conn.execute(
                'INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", '
                '"updatedAt") VALUES (%s, %s, %s, true, now(), now())',
                [user_id, user_id, f"{user_id}@example.com"],
            )
            for n in range(tasks):
                conn.execute(
                    "INSERT INTO task (id, user_id, title, description, completed, priority, "
                    "category, tags, position, created_at, updated_at) VALUES (%s, %s, 't', "
                    "'', false, 'medium', 'other', '[]', %s, now(), now())",
                    [uuid.uuid4(), user_id, n],
                )
    migrate(_url(name))
    with _connect(name) as conn:
        counts = conn.execute("SELECT user_id, tasks FROM task_owner_count ORDER BY 1")
        assert counts.fetchall() == [("u1", 3), ("u2", 1)]
    migrate(_url(name), "tasks", "0006")
    with _connect(name) as conn:
        assert conn.execute("SELECT to_regclass('task_owner_count')").fetchone() == (None,)
        conn.execute("DELETE FROM task WHERE user_id = 'u1'")  # 0006's tombstones again
        assert conn.execute("SELECT count(*) FROM task_tombstone").fetchone() == (3,)
