"""`manage.py dev_token alice@example.com`: a user and a token to try the API locally."""

from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import DatabaseError
from django.utils import timezone

from accounts.better_auth import user_ids
from accounts.models import User

MAX_HOURS = 24 * 30


class Command(BaseCommand):
    help = (
        'Create the user in Better Auth\'s "user" table if absent and print an HS256 token '
        "signed with BETTER_AUTH_SECRET that this API accepts. Development only (DJANGO_DEBUG)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", help="Name of a new user (default: the email's local part).")
        parser.add_argument("--hours", type=int, default=24, help="Token lifetime (default 24).")

    def handle(self, *args: Any, email: str, name: str | None, hours: int, **options: Any) -> None:
        # The token is as good as a real sign-in: never mint one on a production deployment.
        if not settings.DEBUG:
            raise CommandError("dev_token only runs with DJANGO_DEBUG=true (development).")
        if not settings.BETTER_AUTH_SECRET:
            raise CommandError("BETTER_AUTH_SECRET is empty: there is nothing to sign with.")
        max_hours = min(MAX_HOURS, settings.APP_TOKEN_MAX_LIFETIME_SECONDS // 3600)
        if not 1 <= hours <= max_hours:
            raise CommandError(
                f"--hours must be between 1 and {max_hours} (APP_TOKEN_MAX_LIFETIME_SECONDS)."
            )
        email = email.strip().lower()  # Better Auth stores emails lowercased
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"Not an email address: {email!r}") from None
        try:
            user, created = _get_or_create_user(email, name or email.split("@")[0])
        except DatabaseError as error:
            raise CommandError(f"Cannot use Better Auth's tables ({error}). Migrated?") from None
        self.stderr.write(f"{'Created' if created else 'Using'} user {user.id} <{user.email}>")
        self.stdout.write(_sign_token(user, timedelta(hours=hours)))


def _get_or_create_user(email: str, name: str) -> tuple[User, bool]:
    now = timezone.now()
    defaults = {"name": name, "email_verified": False, "created_at": now, "updated_at": now}
    if (new_id := user_ids.new()) is not None:  # None: the database numbers users itself
        defaults["id"] = new_id  # Better Auth's format for the column's type
    return User.objects.get_or_create(email=email, defaults=defaults)


def _sign_token(user: User, lifetime: timedelta) -> str:
    """An app-signed token shaped like Better Auth's (iss/aud as this service expects them)."""
    now = timezone.now()
    claims = {
        "sub": user.id,
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    if settings.BETTER_AUTH_ISSUER:
        claims["iss"] = settings.BETTER_AUTH_ISSUER
    if settings.BETTER_AUTH_AUDIENCE:
        claims["aud"] = settings.BETTER_AUTH_AUDIENCE
    return jwt.encode(claims, settings.BETTER_AUTH_SECRET, algorithm="HS256")
