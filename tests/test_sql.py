"""config.sql: querysets compiled once, then run with other values bound."""

import pytest

from accounts.models import User
from config.sql import compile_for, compile_required, compile_update, fetch_instance, returning
from tasks.models import Task
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

OWNER, TITLE = "owner-placeholder", "title-placeholder"


def _titled(owner: str, title: str):
    return Task.objects.filter(user=User(pk=owner), title=title).values_list("title").order_by()


def test_compiled_sql_binds_every_placeholder():
    mine, theirs = UserFactory(), UserFactory()
    TaskFactory(user=mine, title="a")
    TaskFactory(user=theirs, title="a")
    compiled = compile_for(_titled(OWNER, TITLE), OWNER, TITLE)
    assert compiled is not None

    assert compiled.fetchall(mine.pk, "a") == [("a",)]
    assert compiled.fetchall(mine.pk, "b") == []
    with pytest.raises(ValueError, match="zip"):
        compiled.fetchall(mine.pk)  # one value per placeholder


def test_a_placeholder_that_is_not_exactly_one_parameter_compiles_nothing():
    assert compile_for(_titled(OWNER, "a"), OWNER, TITLE) is None  # TITLE is no parameter
    assert compile_for(_titled(OWNER, OWNER), OWNER) is None  # which one is the owner?


def test_compiled_update_returns_the_updated_row():
    task, other = TaskFactory(title="old"), TaskFactory(title="old")
    compiled = compile_update(Task.objects.filter(pk=task.pk), {"title": TITLE}, TITLE)

    updated = fetch_instance(Task, compiled.sql + returning(Task), compiled.bind("new"))
    assert updated is not None

    assert (updated.pk, updated.title) == (task.pk, "new")
    assert updated.created_at == Task.objects.get(pk=task.pk).created_at
    assert Task.objects.get(pk=other.pk).title == "old"


def test_a_required_placeholder_that_is_not_a_parameter_is_a_bug():
    with pytest.raises(AssertionError, match="placeholder"):
        compile_update(Task.objects.all(), {"title": "x"}, TITLE)
    with pytest.raises(AssertionError, match="placeholder"):
        compile_required(_titled(OWNER, "a"), OWNER, TITLE)
    assert compile_required(_titled(OWNER, TITLE), OWNER, TITLE).slots == (1, 0)
