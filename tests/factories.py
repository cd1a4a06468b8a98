import secrets
import string
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.db import models
from django.utils import timezone

from accounts.models import Session, User
from tasks.models import Task

ID_ALPHABET = string.ascii_letters + string.digits
M = TypeVar("M", bound=models.Model)

if TYPE_CHECKING:

    class ModelFactory(factory.django.DjangoModelFactory[M]):
        # factory-boy's untyped metaclass makes TaskFactory() a Task: say so to mypy.
        def __new__(cls, *args: Any, **kwargs: Any) -> M: ...  # type: ignore[misc]

else:
    ModelFactory = factory.django.DjangoModelFactory


def better_auth_id() -> str:
    """An id as Better Auth generates them: 32 characters of [A-Za-z0-9]."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(32))


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User

    id = factory.LazyFunction(better_auth_id)
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    email_verified = False
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class SessionFactory(ModelFactory[Session]):
    class Meta:
        model = Session

    id = factory.LazyFunction(better_auth_id)
    token = factory.LazyFunction(better_auth_id)
    user = factory.SubFactory(UserFactory)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    ip_address = "127.0.0.1"
    user_agent = "pytest"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class TaskFactory(ModelFactory[Task]):
    class Meta:
        model = Task

    user = factory.SubFactory(UserFactory)
    title = factory.Faker("sentence", nb_words=4)
    description = factory.Faker("paragraph")
    priority = factory.Iterator(Task.Priority.values)
    category = factory.Iterator(Task.Category.values)
