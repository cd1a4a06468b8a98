import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.models import Task
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tasks_task_changelist")


def changelist_titles(response) -> set[str]:
    return {task.title for task in response.context["cl"].result_list}


def run_action(admin_client, action: str, tasks: list[Task]):
    return admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(task.pk) for task in tasks]},
        follow=True,
    )


class TestChangelist:
    def test_requires_a_staff_sign_in(self, client):
        response = client.get(CHANGELIST)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))

    def test_lists_owner_email_and_task_columns(self, admin_client):
        task = TaskFactory(title="Pay rent", due_date=datetime.date(2031, 5, 17))
        response = admin_client.get(CHANGELIST)
        assert response.status_code == 200
        html = response.content.decode()
        for text in ("Pay rent", task.user.email, task.priority, task.category, "May 17, 2031"):
            assert text in html
        headers = [str(header["text"]) for header in response.context["result_headers"]]
        assert headers[1:] == [
            "title", "owner", "priority", "category", "due date", "completed", "created at",
        ]  # fmt: skip

    def test_query_count_does_not_grow_with_rows(self, admin_client):
        TaskFactory.create_batch(3)
        with CaptureQueriesContext(connection) as few:
            admin_client.get(CHANGELIST)
        TaskFactory.create_batch(60)
        with CaptureQueriesContext(connection) as many:
            response = admin_client.get(CHANGELIST)
        assert len(response.context["cl"].result_list) == 63
        assert len(many) == len(few)
        assert len(many) <= 6
        # show_full_result_count = False: no unfiltered COUNT(*) of the whole table.
        counts = [q["sql"] for q in many.captured_queries if "COUNT(*)" in q["sql"]]
        assert len(counts) <= 1

    @pytest.mark.parametrize(
        ("term", "expected"),
        [("invoice", {"Send invoice"}), ("quarterly", {"Send invoice"}), ("zed@", {"Walk dog"})],
    )
    def test_searches_title_description_and_owner_email(self, admin_client, term, expected):
        TaskFactory(title="Send invoice", description="The quarterly one")
        TaskFactory(title="Walk dog", description="", user=UserFactory(email="zed@example.com"))
        response = admin_client.get(CHANGELIST, {"q": term})
        assert changelist_titles(response) == expected

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"completed__exact": "1"}, {"done"}),
            ({"priority__exact": "high"}, {"done"}),
            ({"category__exact": "shopping"}, {"open"}),
            ({"due_date__isnull": "True"}, {"open"}),
        ],
    )
    def test_filters(self, admin_client, params, expected):
        TaskFactory(title="done", completed=True, priority="high", category="work",
                    due_date=timezone.localdate())  # fmt: skip
        TaskFactory(title="open", priority="low", category="shopping", due_date=None)
        response = admin_client.get(CHANGELIST, params)
        assert changelist_titles(response) == expected

    def test_date_hierarchy_drills_down_by_creation_date(self, admin_client):
        TaskFactory(title="old", created_at=timezone.now() - datetime.timedelta(days=800))
        TaskFactory(title="new")
        year = timezone.now().year
        response = admin_client.get(CHANGELIST, {"created_at__year": year})
        assert changelist_titles(response) == {"new"}

    def test_filters_by_owner_from_the_user_page_link(self, admin_client):
        mine = TaskFactory(title="mine")
        TaskFactory(title="theirs")
        response = admin_client.get(CHANGELIST, {"user__exact": mine.user_id})
        assert changelist_titles(response) == {"mine"}


class TestBulkActions:
    def test_mark_complete_in_one_update(self, admin_client):
        tasks = TaskFactory.create_batch(3, completed=False)
        with CaptureQueriesContext(connection) as queries:
            response = run_action(admin_client, "mark_complete", tasks)
        assert "3 task(s) marked complete." in response.content.decode()
        updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert len([sql for sql in updates if '"task"' in sql]) == 1
        for task in tasks:
            task.refresh_from_db()
            assert task.completed
            assert task.completed_at is not None
            assert task.updated_at >= task.completed_at

    def test_mark_complete_keeps_when_already_completed_tasks_were_completed(self, admin_client):
        earlier = timezone.now() - datetime.timedelta(days=3)
        done = TaskFactory(completed=True, completed_at=earlier)
        todo = TaskFactory(completed=False)
        response = run_action(admin_client, "mark_complete", [done, todo])
        assert "1 task(s) marked complete." in response.content.decode()
        done.refresh_from_db()
        assert done.completed_at == earlier

    def test_mark_incomplete_clears_completed_at(self, admin_client):
        task = TaskFactory(completed=True, completed_at=timezone.now())
        run_action(admin_client, "mark_incomplete", [task])
        task.refresh_from_db()
        assert not task.completed
        assert task.completed_at is None

    def test_actions_touch_only_the_selected_tasks(self, admin_client):
        selected, other = TaskFactory(), TaskFactory()
        run_action(admin_client, "mark_complete", [selected])
        other.refresh_from_db()
        assert not other.completed


class TestChangeForm:
    def form_data(self, task: Task, **changes) -> dict:
        data = {
            "user": task.user_id,
            "title": task.title,
            "description": task.description or "",
            "priority": task.priority,
            "category": task.category,
            "due_date": "",
            "tags": "[]",
            "position": task.position,
        }
        if task.completed:
            data["completed"] = "on"
        data.update(changes)
        return data

    def test_completing_in_the_form_stamps_completed_at(self, admin_client):
        task = TaskFactory(completed=False)
        url = reverse("admin:tasks_task_change", args=[task.pk])
        response = admin_client.post(url, self.form_data(task, completed="on"))
        assert response.status_code == 302
        task.refresh_from_db()
        assert task.completed
        assert task.completed_at is not None

    def test_reopening_in_the_form_clears_completed_at(self, admin_client):
        task = TaskFactory(completed=True, completed_at=timezone.now())
        url = reverse("admin:tasks_task_change", args=[task.pk])
        data = self.form_data(task)
        del data["completed"]
        assert admin_client.post(url, data).status_code == 302
        task.refresh_from_db()
        assert task.completed_at is None

    def test_owner_is_picked_by_autocomplete(self, admin_client):
        owner = UserFactory(email="findme@example.com")
        UserFactory(email="other@example.com")
        response = admin_client.get(
            reverse("admin:autocomplete"),
            {"app_label": "tasks", "model_name": "task", "field_name": "user", "term": "findme"},
        )
        assert [result["id"] for result in response.json()["results"]] == [owner.pk]
