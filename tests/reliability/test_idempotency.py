"""`Idempotency-Key` on POST .../tasks: one task per key and user, the first response replayed."""

import datetime
import itertools

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tasks.models import IdempotencyKey, Task
from tests.factories import UserFactory
from tests.tasks.test_concurrency import run_in_threads

PAYLOAD = {"title": "Pay rent", "priority": "high"}


def create(client, payload=PAYLOAD, key="key-1", url=None):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(url or reverse("task-list"), payload, format="json", headers=headers)


@pytest.mark.django_db
class TestIdempotencyKey:
    def test_a_retry_replays_the_first_response(self, auth_client, user):
        first = create(auth_client)
        second = create(auth_client)
        assert (first.status_code, second.status_code) == (201, 201)
        assert second.json() == first.json()
        assert second["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert Task.objects.filter(user=user).count() == 1

    def test_key_order_and_spacing_of_the_body_do_not_matter(self, auth_client, user):
        create(auth_client, {"title": "x", "priority": "low"})
        body = '{ "priority": "low",   "title": "x" }'
        response = auth_client.post(
            reverse("task-list"), body, content_type="application/json",
            headers={"Idempotency-Key": "key-1"},
        )  # fmt: skip
        assert response["Idempotent-Replayed"] == "true"
        assert Task.objects.count() == 1

    def test_both_mounts_share_the_users_keys(self, auth_client, user):
        first = create(auth_client)
        second = create(auth_client, url=reverse("user:task-list", args=[user.pk]))
        assert second.json() == first.json()
        assert Task.objects.count() == 1

    def test_same_key_with_another_body_is_409(self, auth_client, user):
        create(auth_client)
        response = create(auth_client, {"title": "Something else"})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "CONFLICT"
        assert list(Task.objects.values_list("title", flat=True)) == ["Pay rent"]

    def test_keys_are_per_user(self, auth_client, user, other_user):
        create(auth_client)
        other = APIClient()
        other.force_authenticate(other_user)
        response = create(other, {"title": "Theirs"})
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response
        assert response.json()["task"]["user_id"] == other_user.pk
        assert Task.objects.filter(user=other_user).count() == 1

    def test_different_keys_create_different_tasks(self, auth_client, user):
        create(auth_client, key="a")
        create(auth_client, key="b")
        create(auth_client, key=None)
        assert Task.objects.count() == 3

    def test_an_invalid_request_stores_nothing(self, auth_client, user):
        assert create(auth_client, {"title": ""}).status_code == 400
        assert not IdempotencyKey.objects.exists()
        assert create(auth_client).status_code == 201  # the fixed retry runs
        assert Task.objects.count() == 1

    def test_a_key_expires_after_24_hours_and_is_purged(self, auth_client, user):
        create(auth_client, key="old")
        create(auth_client, key="recent")
        day_ago = timezone.now() - datetime.timedelta(hours=24, seconds=1)
        IdempotencyKey.objects.filter(key="old").update(created_at=day_ago)
        response = create(auth_client, key="old")
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response
        assert Task.objects.count() == 3
        assert IdempotencyKey.objects.filter(key="old").count() == 1  # replaced, not kept twice
        assert create(auth_client, key="recent")["Idempotent-Replayed"] == "true"

    def test_expired_keys_of_the_user_are_purged_on_the_next_keyed_create(self, auth_client, user):
        for key in ("a", "b", "c"):
            create(auth_client, key=key)
        IdempotencyKey.objects.update(created_at=timezone.now() - datetime.timedelta(days=2))
        create(auth_client, key="d")
        assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["d"]

    @pytest.mark.parametrize("key", ["", " ", "x" * 256, "caf\u00e9", "tab\there"])
    def test_invalid_key_is_400_and_nothing_is_written(self, auth_client, user, key):
        response = create(auth_client, key=key)
        assert response.status_code == 400, response.content
        assert "Idempotency-Key" in response.json()["error"]["details"]
        assert not Task.objects.exists()
        assert not IdempotencyKey.objects.exists()

    def test_the_longest_key_works(self, auth_client, user):
        assert create(auth_client, key="k" * 255).status_code == 201
        assert create(auth_client, key="k" * 255)["Idempotent-Replayed"] == "true"

    def test_deleting_the_user_with_plain_sql_deletes_their_keys(self, auth_client, user):
        create(auth_client)
        with connection.cursor() as cursor:
            cursor.execute('DELETE FROM "user" WHERE id = %s', [user.pk])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_with_one_key_make_exactly_one_task():
    user = UserFactory()

    def post():
        client = APIClient()
        client.force_authenticate(user=user)  # type: ignore[arg-type]  # DRF takes any user object
        response = create(client)
        return response.status_code, response.json()["task"]["id"]

    results = run_in_threads(20, post)
    assert {status for status, _ in results} == {201}
    assert len({task_id for _, task_id in results}) == 1
    assert Task.objects.filter(user=user).count() == 1
    assert IdempotencyKey.objects.filter(user=user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_with_one_key_and_different_bodies_make_one_task():
    user = UserFactory()
    counter = itertools.count()  # next() on it is atomic, unlike on a generator

    def post():
        client = APIClient()
        client.force_authenticate(user=user)  # type: ignore[arg-type]  # DRF takes any user object
        return create(client, {"title": f"title {next(counter)}"}).status_code

    statuses = run_in_threads(10, post)
    assert sorted(statuses) == [201] + [409] * 9
    assert Task.objects.filter(user=user).count() == 1
