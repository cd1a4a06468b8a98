import datetime
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from tasks.filters import TaskFilter, TaskFilterForm
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
DAY = datetime.timedelta(days=1)


def titles(client, **params):
    response = client.get(reverse("task-list"), params)
    assert response.status_code == 200, response.content
    return [task["title"] for task in response.json()["tasks"]]


class TestFilters:
    @pytest.fixture
    def tasks(self, user, other_user):
        TaskFactory(user=user, title="a", completed=True, priority="high", category="work",
                    tags=["x", "y"], due_date=TODAY - 2 * DAY)  # fmt: skip
        TaskFactory(user=user, title="b", completed=False, priority="low", category="health",
                    tags=["x"], due_date=TODAY - DAY)  # fmt: skip
        TaskFactory(user=user, title="c", completed=False, priority="medium",
                    category="work", tags=[], due_date=TODAY + DAY)  # fmt: skip
        TaskFactory(user=user, title="d", completed=False, priority="high",
                    category="other", tags=["y"], due_date=None)  # fmt: skip
        TaskFactory(user=other_user, title="theirs", priority="high", category="work",
                    tags=["x", "y"], due_date=TODAY - DAY)  # fmt: skip

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"status": "completed"}, {"a"}),
            ({"status": "pending"}, {"b", "c", "d"}),
            ({"status": "all"}, {"a", "b", "c", "d"}),
            ({"completed": "true"}, {"a"}),
            ({"completed": "false"}, {"b", "c", "d"}),
            ({"priority": "high"}, {"a", "d"}),
            ({"priority": "all"}, {"a", "b", "c", "d"}),
            ({"category": "work"}, {"a", "c"}),
            ({"tags": "x"}, {"a", "b"}),
            ({"tags": "x,y"}, {"a"}),
            ({"tags": " y , x "}, {"a"}),
            ({"due_before": str(TODAY - DAY)}, {"a", "b"}),
            ({"due_after": str(TODAY)}, {"c"}),
            ({"overdue": "true"}, {"b"}),
            ({"overdue": "false"}, {"a", "c", "d"}),
            ({"priority": "high", "status": "pending"}, {"d"}),
        ],
    )
    def test_filter(self, auth_client, tasks, params, expected):
        assert set(titles(auth_client, **params)) == expected

    def test_counts_follow_filters(self, auth_client, tasks):
        body = auth_client.get(reverse("task-list"), {"category": "work"}).json()
        assert (body["total"], body["completed_count"], body["pending_count"]) == (2, 1, 1)

    @pytest.mark.parametrize(
        "params",
        [
            {"status": "done"},
            {"completed": "maybe"},
            {"priority": "urgent"},
            {"category": "fun"},
            {"due_before": "soon"},
            {"due_after": "2026-13-01"},
            {"overdue": "yes"},
        ],
    )
    def test_invalid_filter_value_is_a_400(self, auth_client, tasks, params):
        response = auth_client.get(reverse("task-list"), params)
        assert response.status_code == 400
        body = response.json()
        assert body["error"]["code"] == "VALIDATION_ERROR"
        assert next(iter(params)) in body["error"]["details"]


class TestSearch:
    def test_search_title_and_description_case_insensitive(self, auth_client, user, other_user):
        TaskFactory(user=user, title="Buy MILK", description=None)
        TaskFactory(user=user, title="Call mom", description="about the milkshake")
        TaskFactory(user=user, title="Walk", description="dog")
        TaskFactory(user=other_user, title="milk for them")
        assert set(titles(auth_client, search="milk")) == {"Buy MILK", "Call mom"}

    def test_search_terms_all_must_match(self, auth_client, user):
        TaskFactory(user=user, title="red apple", description="")
        TaskFactory(user=user, title="red car", description="")
        assert titles(auth_client, search="apple red") == ["red apple"]

    def test_search_treats_wildcards_literally(self, auth_client, user):
        TaskFactory(user=user, title="100% done", description="")
        TaskFactory(user=user, title="1000 done", description="")
        assert titles(auth_client, search="100%") == ["100% done"]


class TestOrdering:
    @pytest.fixture
    def tasks(self, user):
        now = timezone.now()
        specs = [
            ("b", "low", TODAY + DAY, 2, now - 3 * DAY),
            ("a", "high", None, 0, now - 2 * DAY),
            ("c", "medium", TODAY, 1, now - DAY),
            ("d", "high", TODAY + 2 * DAY, 3, now),
        ]
        for title, priority, due, position, created in specs:
            TaskFactory(user=user, title=title, priority=priority, due_date=due,
                        position=position, created_at=created)  # fmt: skip

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({}, ["d", "c", "a", "b"]),  # newest first
            ({"sort_by": "created_at", "order": "asc"}, ["b", "a", "c", "d"]),
            ({"sort_by": "title"}, ["a", "b", "c", "d"]),
            ({"sort_by": "title", "order": "desc"}, ["d", "c", "b", "a"]),
            ({"sort_by": "priority"}, ["d", "a", "c", "b"]),  # high first, then newest
            ({"sort_by": "priority", "order": "asc"}, ["b", "c", "d", "a"]),
            ({"sort_by": "due_date"}, ["c", "b", "d", "a"]),  # no due date: last
            ({"sort_by": "due_date", "order": "desc"}, ["d", "b", "c", "a"]),  # still last
            ({"sort_by": "position"}, ["a", "c", "b", "d"]),
            ({"ordering": "-priority,title"}, ["a", "d", "c", "b"]),
            ({"ordering": "due_date"}, ["c", "b", "d", "a"]),
            ({"order": "asc"}, ["b", "a", "c", "d"]),
        ],
    )
    def test_sort(self, auth_client, tasks, params, expected):
        assert titles(auth_client, **params) == expected

    @pytest.mark.parametrize(
        "params",
        [
            {"sort_by": "password"},
            {"sort_by": "user__email"},
            {"ordering": "-secret"},
            {"ordering": "title,user_id"},
            {"order": "sideways"},
            {"sort_by": "title", "ordering": "title"},
        ],
    )
    def test_unknown_sort_is_a_400(self, auth_client, tasks, params):
        response = auth_client.get(reverse("task-list"), params)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("params", [{"search": "a\x00b"}, {"tags": "a,\x00"}])
def test_null_characters_in_text_parameters_are_a_400(auth_client, user, params):
    response = auth_client.get(reverse("task-list"), params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


CLEAN_PARAMS = [
    {},
    {"status": "pending", "sort_by": "priority", "order": "desc"},
    {"search": "invoice", "tags": "a, b,a", "overdue": "false"},
    {"priority": "all", "category": "work", "due_before": "2027-01-31", "ordering": "-title"},
    {"completed": "maybe", "sort_by": "nope", "due_after": "31/01"},  # errors
    {"sort_by": "title", "ordering": "position"},
]


@pytest.mark.parametrize("params", CLEAN_PARAMS)
def test_absent_parameters_clean_as_when_every_field_is_cleaned(params):
    def cleaned(skip_absent):
        form = TaskFilter(QueryDict(urlencode(params))).form
        assert isinstance(form, TaskFilterForm)
        if not skip_absent:
            form.absent = {}  # clean every field, as Django does
        form.is_valid()
        return list(form.cleaned_data.items()), form.errors.get_json_data()

    assert TaskFilter().get_form_class().absent  # the skip applies
    assert cleaned(skip_absent=True) == cleaned(skip_absent=False)
