from collections.abc import Iterator

import pytest

from tests.reliability.server import Server, running_server
from tests.tokens import SigningKey, create_signing_key


@pytest.fixture(scope="session")
def server_key(django_db_setup, django_db_blocker) -> SigningKey:
    """A Better Auth signing key in the jwks table before the server first reads the keys."""
    with django_db_blocker.unblock():
        return create_signing_key("EdDSA")


@pytest.fixture(scope="session")
def server(server_key, tmp_path_factory) -> Iterator[Server]:
    """gunicorn with production settings on the test database, shared by this run's tests.

    Its data must be committed to be seen: tests using it need `transaction=True`.
    """
    with running_server(tmp_path_factory.mktemp("server")) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop the database run last, so nothing else sees the outage."""
    items.sort(key=lambda item: item.get_closest_marker("database_outage") is not None)
