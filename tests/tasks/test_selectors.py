"""selectors: task_get, the lookup behind every get, update and delete, and task_list's
SQL built once per set of list parameters (REST and MCP alike)."""

import uuid
from datetime import date
from typing import cast

import django_filters
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from tasks import queries, selectors
from tasks.filters import TaskFilter
from tasks.models import Task
from tasks.pagination import TaskPagination
from tasks.serializers import TaskSerializer
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_returns_the_same_task_as_the_orm(user):
    task = TaskFactory(user=user, tags=["a", "b"], due_date=date(2027, 1, 31), description=None)

    loaded = selectors.task_get(user=user, task_id=str(task.pk))

    assert isinstance(loaded, Task)
    assert loaded._state.adding is False
    expected = Task.objects.get(pk=task.pk)
    assert TaskSerializer(loaded).data == TaskSerializer(expected).data
    assert loaded.tags == ["a", "b"]


@pytest.mark.parametrize(
    "form", [str, lambda pk: pk, lambda pk: pk.hex, lambda pk: str(pk).upper()]
)
def test_accepts_every_form_of_the_id(user, form):
    task = TaskFactory(user=user)

    assert selectors.task_get(user=user, task_id=form(task.pk)).pk == task.pk


def test_another_users_task_is_missing(user):
    theirs = TaskFactory(user=UserFactory())

    with pytest.raises(Task.DoesNotExist):
        selectors.task_get(user=user, task_id=str(theirs.pk))


@pytest.mark.parametrize("task_id", ["", "not-a-uuid", "1' OR '1'='1", "0" * 33, 12, None])
def test_malformed_and_unknown_ids_are_missing(user, task_id):
    TaskFactory(user=user)

    with pytest.raises(Task.DoesNotExist):
        selectors.task_get(user=user, task_id=task_id)
    with pytest.raises(Task.DoesNotExist):
        selectors.task_get(user=user, task_id=str(uuid.uuid4()))


def test_costs_one_query(user, django_assert_num_queries):
    task = TaskFactory(user=user)

    with django_assert_num_queries(1):
        assert selectors.task_get(user=user, task_id=str(task.pk)).pk == task.pk


LIST_PARAMS = [
    {},
    {"limit": "2"},
    {"limit": "2", "skip": "1"},
    {"offset": "3", "sort_by": "priority"},
    {"status": "pending", "sort_by": "due_date", "order": "asc"},
    {"category": "work", "priority": "high"},
    {"search": "alpha"},
    {"tags": "a,b", "sort_by": "title"},
    {"overdue": "true"},
    {"due_before": "2027-06-30", "due_after": "2027-01-01", "ordering": "-due_date"},
]


@pytest.fixture
def two_lists(user, other_user):
    queries.list_sql.clear()
    for owner in (user, other_user):
        TaskFactory(user=owner, title="alpha beta", tags=["a", "b"], due_date=date(2027, 3, 1))
        TaskFactory(user=owner, description="ALPHA", tags=["a"], due_date=date(2020, 1, 1))
        TaskFactory.create_batch(3, user=owner, category="work", priority="high")
        TaskFactory(user=owner, completed=True, due_date=date(2027, 5, 1), tags=["b", "a"])
    return user, other_user


def _orm_page(user, params):
    """The list page as the ORM builds and compiles it, for comparison with the cached SQL."""
    queryset = selectors.task_filter(user=user, params=params)
    queryset.sql_key = None  # not compiled once: the ORM's own query, built now
    paginator = TaskPagination()
    paginator.paginate(queryset, params)
    return paginator.task_page


@pytest.mark.parametrize("params", LIST_PARAMS, ids=lambda params: "&".join(params) or "default")
def test_list_sql_built_once_returns_what_the_orm_returns(two_lists, params):
    for owner in two_lists * 2:  # the second round runs the cached SQL
        page = selectors.task_list(user=owner, params=params)
        expected = _orm_page(owner, params)
        assert page == expected
        assert {task["user_id"] for task in page.tasks} <= {owner.pk}
    assert queries.list_sql.misses == 1
    assert len(queries.list_sql.entries) == 1


def test_a_list_page_costs_one_query_once_its_sql_is_built(
    two_lists, django_assert_num_queries, monkeypatch
):
    user, _ = two_lists
    monkeypatch.setattr(queries, "CHECK_CACHED_SQL", False)
    selectors.task_list(user=user, params={"sort_by": "priority"})

    with django_assert_num_queries(1):
        selectors.task_list(user=user, params={"sort_by": "priority"})


def test_list_sql_is_keyed_on_the_cleaned_parameters(two_lists):
    user, _ = two_lists
    for params in (
        {"sort_by": "priority"},
        {"ordering": "-priority"},
        {"order": "", "sort_by": "priority "},
    ):
        selectors.task_list(user=user, params=params)
    assert queries.list_sql.misses == 1


def test_overdue_lists_follow_the_date(two_lists, monkeypatch):
    user, _ = two_lists
    overdue = {"overdue": "true"}
    assert [task["title"] for task in selectors.task_list(user=user, params=overdue).tasks] == [
        Task.objects.get(user=user, description="ALPHA").title
    ]
    monkeypatch.setattr(timezone, "localdate", lambda: date(2027, 4, 1))

    page = selectors.task_list(user=user, params=overdue)

    assert page == _orm_page(user, overdue)
    assert len(page.tasks) == 2  # due 2020-01-01 and 2027-03-01; the 2027-05-01 one is done


def test_invalid_list_parameters_are_refused_every_time(user):
    for _ in range(2):
        with pytest.raises(ValidationError):
            selectors.task_list(user=user, params={"sort_by": "nonsense"})


def test_an_owner_id_among_the_parameters_falls_back_to_the_orm(two_lists):
    queries.list_sql.clear()
    ambiguous = UserFactory(id="%alpha%")  # also what search=alpha binds
    TaskFactory(user=ambiguous, title="alpha")
    user, _ = two_lists

    for owner in (ambiguous, user):
        page = selectors.task_list(user=owner, params={"search": "alpha"})
        assert page == _orm_page(owner, {"search": "alpha"})

    assert len(page.tasks) == 2
    assert queries.list_sql.misses == 2  # the ambiguous owner's SQL is not kept
    selectors.task_list(user=ambiguous, params={"search": "alpha"})
    assert queries.list_sql.misses == 2  # but the next owner's serves it too


class SettingFilter(TaskFilter):
    """A filter whose SQL reads a setting: wrong to compile once per parameters."""

    mine = django_filters.CharFilter(
        method=lambda queryset, name, value: queryset.filter(priority=settings.MY_PRIORITY)  # type: ignore[misc]  # this test's own
    )


def _setting_list(user, priority):
    with override_settings(MY_PRIORITY=priority):
        filtered = SettingFilter({"mine": "1"}, queryset=selectors.task_queryset(user=user))
        queryset = cast(queries.TaskQuerySet, filtered.qs)  # django-filter's stubs: a QuerySet
        return {task["priority"] for task in queryset.rows(0, 100)}


def test_the_check_fails_a_filter_whose_sql_depends_on_more_than_its_parameters(
    two_lists, monkeypatch
):
    user, _ = two_lists
    monkeypatch.setattr(queries, "CHECK_CACHED_SQL", False)
    assert _setting_list(user, "high") == {"high"}
    assert _setting_list(user, "medium") == {"high"}  # unchecked: the stale SQL ran

    queries.list_sql.clear()
    monkeypatch.setattr(queries, "CHECK_CACHED_SQL", True)  # as in every test
    assert _setting_list(user, "high") == {"high"}
    with pytest.raises(AssertionError, match="depends on more than its key"):
        _setting_list(user, "medium")
