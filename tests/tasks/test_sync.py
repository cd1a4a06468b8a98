"""Versions and conditional requests, the changes feed, batches and reorder (issue 19)."""

import datetime
import uuid

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tasks import services
from tasks.models import Task, TaskTombstone
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST, CHANGES = reverse("task-list"), reverse("task-changes")
BATCH, REORDER = reverse("task-batch"), reverse("task-reorder")


def detail(task):
    return reverse("task-detail", args=[task.pk])


def toggle(task):
    return reverse("task-toggle", args=[task.pk])


def snapshot(user):
    """Everything a failed request must leave as it was: the user's rows and tombstones."""
    tasks = sorted(Task.objects.filter(user=user).values_list(), key=str)
    tombstones = sorted(TaskTombstone.objects.filter(user=user).values_list(), key=str)
    return tasks, tombstones


class TestVersionsAndETags:
    def test_every_write_bumps_the_version_and_the_etag_follows(self, auth_client, user):
        created = auth_client.post(LIST, {"title": "a"}, format="json")
        task = Task.objects.get(pk=created.json()["task"]["id"])
        assert created.json()["task"]["version"] == 1
        assert created["ETag"] == '"1"'
        steps = [
            auth_client.patch(detail(task), {"title": "b"}, format="json"),
            auth_client.put(detail(task), {"title": "c"}, format="json"),
            auth_client.patch(toggle(task)),
        ]
        assert [r.json()["task"]["version"] for r in steps] == [2, 3, 4]
        assert [r["ETag"] for r in steps] == ['"2"', '"3"', '"4"']
        got = auth_client.get(detail(task))
        assert (got["ETag"], got.json()["task"]["version"]) == ('"4"', 4)

    def test_a_write_by_any_other_path_bumps_it_too(self, auth_client, user):
        task = TaskFactory(user=user)
        task.title = "saved by the admin"
        task.save()  # the model's own save, as the admin does, sends the version it read
        assert Task.objects.get(pk=task.pk).version == 2
        Task.objects.filter(pk=task.pk).update(title="plain update")
        assert Task.objects.get(pk=task.pk).version == 3

    def test_if_none_match_gets_304_with_an_empty_body_then_200_after_a_change(
        self, auth_client, user
    ):
        task = TaskFactory(user=user)
        etag = auth_client.get(detail(task))["ETag"]
        again = auth_client.get(detail(task), HTTP_IF_NONE_MATCH=etag)
        assert (again.status_code, again.content, again["ETag"]) == (304, b"", etag)
        assert auth_client.get(detail(task), HTTP_IF_NONE_MATCH=f"W/{etag}").status_code == 304
        auth_client.patch(toggle(task))
        changed = auth_client.get(detail(task), HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200
        assert changed["ETag"] != etag

    @pytest.mark.parametrize(
        ("method", "route", "body"),
        [
            ("put", detail, {"title": "lost update"}),
            ("patch", detail, {"priority": "low"}),
            ("patch", toggle, {}),
            ("delete", detail, None),
        ],
    )
    def test_a_stale_if_match_is_412_with_the_current_task_and_changes_nothing(
        self, auth_client, user, method, route, body
    ):
        task = TaskFactory(user=user, title="v1", priority="high")
        auth_client.patch(detail(task), {"title": "v2"}, format="json")  # now version 2
        before = snapshot(user)
        response = getattr(auth_client, method)(
            route(task), body, format="json", HTTP_IF_MATCH='"1"'
        )
        assert response.status_code == 412
        error = response.json()["error"]
        assert error["code"] == "PRECONDITION_FAILED"
        assert error["details"]["current"]["title"] == "v2"
        assert error["details"]["current"]["version"] == 2
        assert response["ETag"] == '"2"'
        assert snapshot(user) == before

    @pytest.mark.parametrize(
        ("method", "route", "body", "status"),
        [
            ("put", detail, {"title": "mine"}, 200),
            ("patch", detail, {"priority": "low"}, 200),
            ("patch", toggle, {"completed": True}, 200),
            ("delete", detail, None, 204),
        ],
    )
    def test_a_matching_if_match_succeeds(self, auth_client, user, method, route, body, status):
        task = TaskFactory(user=user)
        etag = auth_client.get(detail(task))["ETag"]
        for form in ("{}", '"77", {}', "*"):
            response = getattr(auth_client, method)(
                route(task), body, format="json", HTTP_IF_MATCH=form.format(etag)
            )
            assert response.status_code == status, response.content
            if status == 204:
                break  # one delete is enough
            etag = response["ETag"]
        assert Task.objects.filter(pk=task.pk).exists() is (status != 204)

    @pytest.mark.parametrize("if_match", ['W/"1"', "1", "garbage", '"x"'])
    def test_a_weak_or_foreign_if_match_never_matches(self, auth_client, user, if_match):
        task = TaskFactory(user=user)
        response = auth_client.patch(
            detail(task), {"title": "x"}, format="json", HTTP_IF_MATCH=if_match
        )
        assert response.status_code == 412
        assert Task.objects.get(pk=task.pk).version == 1

    def test_if_match_on_a_missing_or_anothers_task_is_404(self, auth_client, other_user):
        theirs = TaskFactory(user=other_user)
        for route in (detail(theirs), reverse("task-detail", args=[uuid.uuid4()])):
            assert (
                auth_client.patch(route, {}, format="json", HTTP_IF_MATCH='"1"').status_code == 404
            )
            assert auth_client.delete(route, HTTP_IF_MATCH='"1"').status_code == 404

    def test_an_empty_patch_checks_the_precondition_too(self, auth_client, user):
        task = TaskFactory(user=user)
        assert (
            auth_client.patch(detail(task), {}, format="json", HTTP_IF_MATCH='"2"').status_code
            == 412
        )
        assert (
            auth_client.patch(detail(task), {}, format="json", HTTP_IF_MATCH='"1"').status_code
            == 200
        )


class TestListETag:
    def test_304_while_nothing_changes_with_an_empty_body(self, auth_client, user):
        TaskFactory.create_batch(3, user=user)
        first = auth_client.get(LIST)
        again = auth_client.get(LIST, HTTP_IF_NONE_MATCH=first["ETag"])
        assert (again.status_code, again.content, again["ETag"]) == (304, b"", first["ETag"])

    def test_the_conditional_path_computes_the_same_etag_for_a_partial_page(
        self, auth_client, user
    ):
        TaskFactory.create_batch(5, user=user)
        for params in ({"limit": 2}, {"offset": 1}, {"status": "pending", "limit": 1}, {}):
            etag = auth_client.get(LIST, params)["ETag"]
            assert auth_client.get(LIST, params, HTTP_IF_NONE_MATCH=etag).status_code == 304

    def test_200_again_after_any_change_to_the_page(self, auth_client, user):
        tasks = TaskFactory.create_batch(3, user=user)
        changes = [
            lambda: auth_client.patch(detail(tasks[0]), {"title": "new"}, format="json"),
            lambda: auth_client.post(LIST, {"title": "another"}, format="json"),
            lambda: auth_client.delete(detail(tasks[1])),
        ]
        for change in changes:
            etag = auth_client.get(LIST)["ETag"]
            change()
            response = auth_client.get(LIST, HTTP_IF_NONE_MATCH=etag)
            assert response.status_code == 200
            assert response["ETag"] != etag

    def test_200_again_after_a_change_that_only_moves_the_counts(self, auth_client, user):
        on_page, off_page = TaskFactory.create_batch(2, user=user)
        params = {"sort_by": "created_at", "order": "desc", "limit": 1}
        page = auth_client.get(LIST, params)
        assert [t["id"] for t in page.json()["tasks"]] == [str(off_page.pk)]
        # Completing the task that is not on the page changes only completed_count.
        auth_client.patch(toggle(on_page))
        response = auth_client.get(LIST, params, HTTP_IF_NONE_MATCH=page["ETag"])
        assert response.status_code == 200
        assert response.json()["completed_count"] == page.json()["completed_count"] + 1
        assert response.json()["tasks"] == page.json()["tasks"]
        # Deleting it changes only `total`.
        etag = response["ETag"]
        auth_client.delete(detail(on_page))
        response = auth_client.get(LIST, params, HTTP_IF_NONE_MATCH=etag)
        assert (response.status_code, response.json()["total"]) == (200, 1)

    def test_a_change_outside_the_filtered_set_keeps_304(self, auth_client, user):
        TaskFactory(user=user, priority="high")
        low = TaskFactory(user=user, priority="low")
        etag = auth_client.get(LIST, {"priority": "high"})["ETag"]
        auth_client.patch(detail(low), {"title": "elsewhere"}, format="json")
        assert (
            auth_client.get(LIST, {"priority": "high"}, HTTP_IF_NONE_MATCH=etag).status_code == 304
        )
        auth_client.patch(detail(low), {"priority": "high"}, format="json")  # it joins the set
        assert (
            auth_client.get(LIST, {"priority": "high"}, HTTP_IF_NONE_MATCH=etag).status_code == 200
        )

    def test_the_etag_differs_per_parameters_day_and_user(self, auth_client, user, other_user):
        TaskFactory(user=user)
        etags = {
            auth_client.get(LIST, params)["ETag"] for params in ({}, {"limit": 5}, {"search": "x"})
        }
        assert len(etags) == 3
        etag = auth_client.get(LIST)["ETag"]
        with time_machine.travel(timezone.now() + datetime.timedelta(days=1)):
            assert auth_client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 200  # `overdue`
        auth_client.force_authenticate(user=other_user)
        assert auth_client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 200

    def test_invalid_parameters_are_400_with_if_none_match_too(self, auth_client, user):
        response = auth_client.get(LIST, {"status": "bogus"}, HTTP_IF_NONE_MATCH='"x"')
        assert response.status_code == 400

    def test_the_conditional_path_is_one_query(self, auth_client, user, django_assert_num_queries):
        TaskFactory.create_batch(3, user=user)
        etag = auth_client.get(LIST)["ETag"]
        with django_assert_num_queries(1) as captured:
            assert auth_client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert "COUNT(*)" in captured.captured_queries[0]["sql"]


class TestChangesFeed:
    def test_first_sync_then_changes_and_tombstones(self, auth_client, user, other_user):
        a, b, c = TaskFactory.create_batch(3, user=user)
        TaskFactory(user=other_user)
        first = auth_client.get(CHANGES).json()
        assert {t["id"] for t in first["tasks"]} == {str(a.pk), str(b.pk), str(c.pk)}
        assert (first["deleted"], first["has_more"]) == ([], False)

        nothing = auth_client.get(CHANGES, {"since": first["cursor"]}).json()
        assert (nothing["tasks"], nothing["deleted"]) == ([], [])

        auth_client.patch(detail(a), {"title": "edited"}, format="json")
        auth_client.delete(detail(b))
        created = auth_client.post(LIST, {"title": "new"}, format="json").json()["task"]
        TaskFactory(user=other_user)
        changes = auth_client.get(CHANGES, {"since": nothing["cursor"]}).json()
        assert [t["id"] for t in changes["tasks"]] == [str(a.pk), created["id"]]  # oldest first
        assert changes["tasks"][0]["title"] == "edited"
        assert changes["deleted"] == [str(b.pk)]
        assert changes["cursor"] != nothing["cursor"]

    def test_pages_with_has_more_until_caught_up(self, auth_client, user):
        cursor = auth_client.get(CHANGES).json()["cursor"]
        tasks = TaskFactory.create_batch(5, user=user)
        auth_client.delete(detail(tasks[2]))
        seen_tasks, seen_deleted, pages = [], [], 0
        while True:
            page = auth_client.get(CHANGES, {"since": cursor, "limit": 2}).json()
            pages += 1
            seen_tasks += [t["id"] for t in page["tasks"]]
            seen_deleted += page["deleted"]
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        assert pages == 3
        assert seen_tasks == [str(t.pk) for t in tasks if t != tasks[2]]
        assert seen_deleted == [str(tasks[2].pk)]

    def test_the_user_mount_serves_it_and_refuses_another_user(self, auth_client, user, other_user):
        TaskFactory(user=user)
        mine = auth_client.get(reverse("user:task-changes", args=[user.pk]))
        assert (mine.status_code, len(mine.json()["tasks"])) == (200, 1)
        assert (
            auth_client.get(reverse("user:task-changes", args=[other_user.pk])).status_code == 403
        )

    @pytest.mark.parametrize("since", ["garbage", "AAAA", "////", "-1"])
    def test_a_malformed_cursor_is_400(self, auth_client, user, since):
        response = auth_client.get(CHANGES, {"since": since})
        assert response.status_code == 400
        assert response.json()["error"]["details"] == {"since": ["Not a cursor this API issued."]}

    def test_an_expired_cursor_is_410_resync_required(self, auth_client, user):
        cursor = auth_client.get(CHANGES).json()["cursor"]
        later = timezone.now() + TaskTombstone.RETENTION + datetime.timedelta(minutes=1)
        with time_machine.travel(later):
            response = auth_client.get(CHANGES, {"since": cursor})
            assert response.status_code == 410
            assert response.json()["error"]["code"] == "RESYNC_REQUIRED"
            restart = auth_client.get(CHANGES)  # what the client does then
            assert restart.status_code == 200
            assert auth_client.get(CHANGES, {"since": restart.json()["cursor"]}).status_code == 200

    def test_tombstones_are_kept_for_the_retention_then_purged(self, auth_client, user):
        task = TaskFactory(user=user)
        auth_client.delete(detail(task))
        assert services.purge_tombstones() == 0
        margin = services.PURGE_MARGIN
        later = timezone.now() + TaskTombstone.RETENTION + margin + datetime.timedelta(minutes=1)
        assert services.purge_tombstones(now=later) == 1
        assert not TaskTombstone.objects.exists()

    def test_the_hourly_purge_runs_from_deletes(self, auth_client, user, monkeypatch):
        TaskTombstone.objects.create(
            task_id=uuid.uuid4(),
            user=user,
            seq=1,
            deleted_at=timezone.now() - datetime.timedelta(days=40),
        )
        monkeypatch.setattr(services, "_next_purge", 0.0)
        auth_client.delete(detail(TaskFactory(user=user)))
        assert TaskTombstone.objects.count() == 1  # the old one went, the new one stays

    def test_deleting_the_user_deletes_their_tasks_without_tombstones(self, user):
        TaskFactory.create_batch(3, user=user)
        with connection.cursor() as cursor:  # as Better Auth does it
            cursor.execute('DELETE FROM "user" WHERE id = %s', [user.pk])
        assert not Task.objects.filter(user_id=user.pk).exists()
        assert not TaskTombstone.objects.filter(user_id=user.pk).exists()

    def test_cost_grows_with_changes_not_with_the_list(self, user):
        TaskFactory.create_batch(30, user=user)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE task")
            cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: plans as at scale
            cursor.execute(
                "EXPLAIN SELECT id FROM task WHERE user_id = %s AND change_seq > %s "
                "ORDER BY change_seq LIMIT 1001",
                [user.pk, 10**9],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "task_user_change_seq_idx" in plan


class TestBatch:
    def test_applies_every_operation_in_order(self, auth_client, user):
        a, b, c = TaskFactory.create_batch(3, user=user)
        response = auth_client.post(
            BATCH,
            {
                "operations": [
                    {"op": "create", "task": {"title": "new", "priority": "high"}},
                    {"op": "update", "id": str(a.pk), "task": {"title": "A"}, "if_match": 1},
                    {"op": "complete", "id": str(b.pk)},
                    {"op": "complete", "id": str(b.pk), "completed": True},
                    {"op": "delete", "id": str(c.pk), "if_match": 1},
                ]
            },
            format="json",
        )
        assert response.status_code == 200, response.content
        results = response.json()["results"]
        assert [(r["op"], r["status"]) for r in results] == [
            ("create", 201), ("update", 200), ("complete", 200), ("complete", 200),
            ("delete", 204),
        ]  # fmt: skip
        assert results[0]["task"]["priority"] == "high"
        assert results[1]["task"]["title"] == "A"
        assert results[3]["task"]["completed"] is False or results[3]["task"]["completed"]
        assert Task.objects.get(pk=b.pk).completed is True
        assert results[4]["id"] == str(c.pk)
        assert not Task.objects.filter(pk=c.pk).exists()

    @pytest.mark.parametrize(
        ("failing", "status", "code"),
        [
            ({"op": "update", "id": "A", "task": {"title": "x"}, "if_match": 9}, 412,
             "PRECONDITION_FAILED"),
            ({"op": "delete", "id": str(uuid.uuid4())}, 404, "NOT_FOUND"),
            ({"op": "complete", "id": "THEIRS"}, 404, "NOT_FOUND"),
        ],
    )  # fmt: skip
    def test_one_failing_operation_leaves_the_database_untouched(
        self, auth_client, user, other_user, failing, status, code
    ):
        a, b = TaskFactory.create_batch(2, user=user)
        theirs = TaskFactory(user=other_user)
        failing = dict(failing)
        failing["id"] = {"A": str(a.pk), "THEIRS": str(theirs.pk)}.get(failing["id"], failing["id"])
        before, theirs_before = snapshot(user), snapshot(other_user)
        operations = [
            {"op": "create", "task": {"title": "made then undone"}},
            {"op": "update", "id": str(a.pk), "task": {"title": "undone"}},
            {"op": "delete", "id": str(b.pk)},
            failing,
            {"op": "create", "task": {"title": "never reached"}},
        ]
        response = auth_client.post(BATCH, {"operations": operations}, format="json")
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code
        assert error["details"]["operation"]["index"] == 3
        assert error["details"]["operation"]["op"] == failing["op"]
        assert error["message"].startswith("operations[3]")
        if status == 412:
            assert error["details"]["error"]["details"]["current"]["id"] == str(a.pk)
        assert snapshot(user) == before
        assert snapshot(other_user) == theirs_before

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "operations"),
            ({"operations": []}, "operations"),
            ({"operations": [{"op": "create", "task": {"title": "x"}}] * 101}, "operations"),
            ({"operations": [{"op": "explode"}]}, "operations"),
            ({"operations": [{"op": "update", "task": {"title": "x"}}]}, "operations"),
            ({"operations": [{"op": "create", "task": {"title": ""}}]}, "operations"),
            ({"operations": [{"op": "delete", "id": "not-a-uuid"}]}, "operations"),
            ({"operations": [{"op": "delete", "id": str(uuid.uuid4()), "if_match": "1"}]},
             "operations"),
        ],
    )  # fmt: skip
    def test_invalid_operations_are_400_before_anything_runs(self, auth_client, user, body, field):
        TaskFactory(user=user)
        before = snapshot(user)
        response = auth_client.post(BATCH, body, format="json")
        assert response.status_code == 400
        assert field in response.json()["error"]["details"]
        assert snapshot(user) == before

    def test_invalid_operation_names_its_index(self, auth_client, user):
        operations = [{"op": "create", "task": {"title": "ok"}}, {"op": "create", "task": {}}]
        response = auth_client.post(BATCH, {"operations": operations}, format="json")
        assert response.json()["error"]["details"] == {
            "operations": {"1": {"task": {"title": ["This field is required."]}}}
        }

    def test_idempotency_key_replays_the_first_answer(self, auth_client, user):
        body = {"operations": [{"op": "create", "task": {"title": "once"}}]}
        first = auth_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        again = auth_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert first.status_code == again.status_code == 200
        assert again["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert Task.objects.filter(user=user, title="once").count() == 1
        other = {"operations": [{"op": "create", "task": {"title": "twice"}}]}
        assert (
            auth_client.post(BATCH, other, format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code
            == 409
        )
        # The same key on POST .../tasks is another request.
        create = auth_client.post(LIST, {"title": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert create.status_code == 409

    def test_a_failed_batch_stores_no_idempotent_answer(self, auth_client, user):
        task = TaskFactory(user=user)
        body = {"operations": [{"op": "delete", "id": str(task.pk), "if_match": 5}]}
        assert (
            auth_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
            == 412
        )
        body["operations"][0]["if_match"] = 1  # the client refetched: the key runs anew
        retried = auth_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert retried.status_code == 200
        assert "Idempotent-Replayed" not in retried
        assert not Task.objects.filter(pk=task.pk).exists()

    def test_each_operation_counts_towards_the_write_rate_limit(self, auth_client, user, settings):
        settings.RATE_LIMIT_WRITES = "5/minute"
        with time_machine.travel(
            datetime.datetime(2026, 3, 1, 12, 0, 30, tzinfo=datetime.UTC), tick=False
        ):
            three = {"operations": [{"op": "create", "task": {"title": "x"}}] * 3}
            assert auth_client.post(BATCH, three, format="json").status_code == 200
            response = auth_client.post(BATCH, three, format="json")
            assert response.status_code == 429
            assert "Retry-After" in response
        assert Task.objects.filter(user=user).count() == 3


class TestReorder:
    def positions(self, user):
        return dict(Task.objects.filter(user=user).values_list("title", "position"))

    def test_listed_tasks_take_their_places_in_the_given_order(self, auth_client, user):
        tasks = {t: TaskFactory(user=user, title=t, position=p) for p, t in enumerate("abcde")}
        ids = [str(tasks[t].pk) for t in "eb"]  # b before... e before b, in b's and e's places
        response = auth_client.post(REORDER, {"ids": ids}, format="json")
        assert response.status_code == 200, response.content
        assert [t["title"] for t in response.json()["tasks"]] == ["e", "b"]
        assert self.positions(user) == {"a": 0, "e": 1, "c": 2, "d": 3, "b": 4}
        assert Task.objects.get(pk=tasks["a"].pk).version == 1  # unmoved: not written
        assert Task.objects.get(pk=tasks["e"].pk).version == 2

    def test_positions_become_dense_and_unique(self, auth_client, user):
        for title, position in [("a", 5), ("b", 5), ("c", 9), ("d", 0)]:
            TaskFactory(user=user, title=title, position=position)
        ids = [str(Task.objects.get(title="d").pk)]
        assert auth_client.post(REORDER, {"ids": ids}, format="json").status_code == 200
        assert sorted(self.positions(user).values()) == [0, 1, 2, 3]
        assert self.positions(user)["c"] == 3

    def test_unknown_ids_are_404_and_change_nothing(self, auth_client, user, other_user):
        mine, theirs = TaskFactory(user=user), TaskFactory(user=other_user)
        before = snapshot(user), snapshot(other_user)
        for ids in ([str(mine.pk), str(theirs.pk)], [str(uuid.uuid4())]):
            response = auth_client.post(REORDER, {"ids": ids}, format="json")
            assert response.status_code == 404
            assert response.json()["error"]["details"] == {"ids": ids[-1:]}
        assert (snapshot(user), snapshot(other_user)) == before

    @pytest.mark.parametrize(
        "body", [{}, {"ids": []}, {"ids": ["x"]}, {"ids": [str(uuid.UUID(int=1))] * 2}]
    )
    def test_invalid_bodies_are_400(self, auth_client, user, body):
        assert auth_client.post(REORDER, body, format="json").status_code == 400

    def test_creates_append_after_a_reorder(self, auth_client, user):
        a, b = TaskFactory(user=user, position=3), TaskFactory(user=user, position=8)
        auth_client.post(REORDER, {"ids": [str(b.pk), str(a.pk)]}, format="json")
        created = auth_client.post(LIST, {"title": "c"}, format="json").json()["task"]
        assert created["position"] == 2
        assert sorted(Task.objects.filter(user=user).values_list("position", flat=True)) == [
            0,
            1,
            2,
        ]


def test_other_users_tasks_stay_out_of_every_new_route(auth_client, user):
    stranger = UserFactory()
    theirs = TaskFactory(user=stranger)
    assert auth_client.get(CHANGES).json()["tasks"] == []
    body = {"operations": [{"op": "update", "id": str(theirs.pk), "task": {"title": "mine"}}]}
    assert auth_client.post(BATCH, body, format="json").status_code == 404
    assert Task.objects.get(pk=theirs.pk).title == theirs.title


class TestHostileVersions:
    """Versions no task can have are a 412 or a 400, never a 500 (any database)."""

    @pytest.mark.parametrize(
        "tag",
        ['"' + "9" * 4400 + '"', '"\u00b2"', '"99999999999999999999"', '"9223372036854775808"'],
    )
    def test_an_impossible_if_match_is_a_412(self, auth_client, user, tag):
        task = TaskFactory(user=user)
        url = reverse("task-detail", args=[task.pk])
        response = auth_client.patch(url, {"title": "b"}, format="json", HTTP_IF_MATCH=tag)
        assert response.status_code == 412
        assert auth_client.delete(url, HTTP_IF_MATCH=tag).status_code == 412

    def test_a_batch_version_past_a_bigint_is_a_400(self, auth_client, user):
        task = TaskFactory(user=user)
        operation = {"op": "delete", "id": str(task.pk), "if_match": 10**20}
        response = auth_client.post(BATCH, {"operations": [operation]}, format="json")
        assert response.status_code == 400

    def test_a_quota_failure_in_a_batch_keeps_its_code(self, auth_client, user, settings):
        settings.TASK_QUOTA_PER_USER = 2
        operations = [{"op": "create", "task": {"title": f"t{n}"}} for n in range(3)]
        response = auth_client.post(BATCH, {"operations": operations}, format="json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "QUOTA_EXCEEDED"
