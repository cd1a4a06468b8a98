"""Rows a transactional test commits to Better Auth's unmanaged tables do not reach the next
test (Django's flush empties only managed tables; tests/conftest.py deletes the rest)."""

import pytest

from accounts.models import Jwk, Session, User
from tests.factories import SessionFactory
from tests.tokens import create_signing_key

pytestmark = pytest.mark.django_db(transaction=True)
committed: dict[str, str] = {}  # what the first test left, for the second (file order)


def test_commits_rows_to_better_auths_tables():
    session = SessionFactory(user__email="leak-check@example.com")
    create_signing_key("EdDSA")
    committed.update(
        user=session.user_id, session=session.pk, jwk=Jwk.objects.latest("created_at").pk
    )


def test_the_next_test_does_not_see_them():
    assert set(committed) == {"user", "session", "jwk"}
    assert not User.objects.filter(pk=committed["user"]).exists()
    assert not Session.objects.filter(pk=committed["session"]).exists()
    assert not Jwk.objects.filter(pk=committed["jwk"]).exists()
