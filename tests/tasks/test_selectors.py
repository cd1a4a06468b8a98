"""selectors: task_get, the lookup behind every get, update and delete, and task_list's
SQL built once per set of list parameters (REST and MCP alike)."""

import uuid
from datetime import date

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from tasks import selectors
from tasks.models import Task
from tasks.pagination import TaskPagination
from tasks.serializers import TaskSerializer, task_rows
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
    selectors._list_sql.cache_clear()
    for owner in (user, other_user):
        TaskFactory(user=owner, title="alpha beta", tags=["a", "b"], due_date=date(2027, 3, 1))
        TaskFactory(user=owner, description="ALPHA", tags=["a"], due_date=date(2020, 1, 1))
        TaskFactory.create_batch(3, user=owner, category="work", priority="high")
        TaskFactory(user=owner, completed=True, due_date=date(2027, 5, 1), tags=["b", "a"])
    return user, other_user


def _orm_page(user, params):
    """The list page as the ORM builds it, for comparison with the cached SQL."""
    request = selectors._query_request(params)
    paginator = TaskPagination()
    paginator.paginate_queryset(
        task_rows(selectors._filter(selectors.task_queryset(user=user), request)), request
    )
    return paginator.task_page


@pytest.mark.parametrize("params", LIST_PARAMS, ids=lambda params: "&".join(params) or "default")
def test_list_sql_built_once_returns_what_the_orm_returns(two_lists, params):
    for owner in two_lists * 2:  # the second round runs the cached SQL
        page = selectors.task_list(user=owner, params=params)
        expected = _orm_page(owner, params)
        assert page == expected
        assert {task["user_id"] for task in page.tasks} <= {owner.pk}
    assert selectors._list_sql.cache_info().misses == 1
    assert selectors._list_sql.cache_info().hits == 3


def test_a_list_page_costs_one_query_once_its_sql_is_built(two_lists, django_assert_num_queries):
    user, _ = two_lists
    selectors.task_list(user=user, params={"sort_by": "priority"})

    with django_assert_num_queries(1):
        selectors.task_list(user=user, params={"sort_by": "priority"})


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


def test_a_placeholder_owner_that_is_ambiguous_falls_back_to_the_orm(two_lists, monkeypatch):
    user, _ = two_lists
    selectors._list_sql.cache_clear()
    monkeypatch.setattr(selectors, "OWNER", "%alpha%")  # also what search=alpha binds

    page = selectors.task_list(user=user, params={"search": "alpha"})

    assert selectors._list_sql(((("search", ("alpha",))),), timezone.localdate()) is None
    assert page == _orm_page(user, {"search": "alpha"})
    assert len(page.tasks) == 2
