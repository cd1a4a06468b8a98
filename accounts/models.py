"""Better Auth's own tables, mapped read-mostly for Django.

Mapping source: the DDL real Better Auth servers (1.3, 1.4, 1.7) ran on PostgreSQL
(`accounts/sql/better_auth.sql` is 1.7's). Better Auth creates and migrates these
tables; Django never does (`managed = False`), apart from the create-if-absent
bootstrap in `accounts/migrations/0001_initial.py`.

Only the columns every Better Auth 1.x has are mapped: versions and plugins add
others (jwks "expiresAt", "alg", "crv"; "user".role), which are read where needed
and only where they exist (accounts/keys.py). Table and column names are Better
Auth's defaults or the app's renames (BETTER_AUTH_SCHEMA, accounts/better_auth.py).
Left out: the `verification` table (email and password-reset codes; nothing here
reads it).
"""

from functools import cached_property
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from accounts.better_auth import column, table, user_ids
from config.sql import fetch_instance


class BetterAuthIdField(models.TextField):
    """A Better Auth id: text, uuid or an integer in the database, always a str here."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        return value if value is None or isinstance(value, str) else str(value)

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else str(value)


class UserIdField(BetterAuthIdField):
    """`"user".id`: columns that reference it (task.user_id) get the type it has."""

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        # Better Auth makes it text, or uuid / integer with `advanced.database.generateId`;
        # a foreign key must match it exactly, so migrations ask the database.
        return user_ids.sql_type(connection)


class UserManager(models.Manager["User"]):
    def by_id(self, user_id: str) -> "User | None":
        """The user with this id, or None; what every authenticated request runs.

        The ORM builds and compiles the same SELECT on every call; here Django builds
        it once and each call only runs it, without RawQuerySet's per-call column
        mapping (see fetch_instance).
        """
        if not user_ids.accepts(user_id, self.db):
            return None  # not even of the column's type (a uuid or integer column)
        return fetch_instance(self.model, self._by_id_sql, [user_id])

    @cached_property
    def _by_id_sql(self) -> str:
        sql, _ = self.filter(pk="").order_by().query.sql_with_params()
        return sql


class User(models.Model):
    """A Better Auth user (`"user"` table); what `request.user` is for API calls."""

    id = UserIdField(primary_key=True)
    name = models.TextField(db_column=column("user", "name"))
    email = models.TextField(db_column=column("user", "email"), unique=True)
    email_verified = models.BooleanField(db_column=column("user", "emailVerified"), default=False)
    image = models.TextField(db_column=column("user", "image"), null=True, blank=True)
    created_at = models.DateTimeField(db_column=column("user", "createdAt"))
    updated_at = models.DateTimeField(db_column=column("user", "updatedAt"))

    # DRF's IsAuthenticated and Django's request machinery read these.
    is_authenticated = True
    is_anonymous = False
    is_active = True

    objects = UserManager()

    class Meta:
        managed = False
        db_table = table("user")
        ordering = ["email"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class Session(models.Model):
    """A Better Auth session; signing out deletes the row."""

    id = BetterAuthIdField(primary_key=True)
    token = models.TextField(db_column=column("session", "token"), unique=True)
    user = models.ForeignKey(
        User, models.DO_NOTHING, db_column=column("session", "userId"), related_name="sessions"
    )
    expires_at = models.DateTimeField(db_column=column("session", "expiresAt"))
    ip_address = models.TextField(db_column=column("session", "ipAddress"), null=True, blank=True)
    user_agent = models.TextField(db_column=column("session", "userAgent"), null=True, blank=True)
    created_at = models.DateTimeField(db_column=column("session", "createdAt"))
    updated_at = models.DateTimeField(db_column=column("session", "updatedAt"))

    class Meta:
        managed = False
        db_table = table("session")

    def __str__(self) -> str:
        return f"session {self.id} of {self.user_id}"


class Account(models.Model):
    """A sign-in method of a user (password, OAuth provider); read-only here."""

    id = BetterAuthIdField(primary_key=True)
    account_id = models.TextField(db_column=column("account", "accountId"))
    provider_id = models.TextField(db_column=column("account", "providerId"))
    user = models.ForeignKey(
        User, models.DO_NOTHING, db_column=column("account", "userId"), related_name="accounts"
    )
    access_token = models.TextField(
        db_column=column("account", "accessToken"), null=True, blank=True
    )
    refresh_token = models.TextField(
        db_column=column("account", "refreshToken"), null=True, blank=True
    )
    id_token = models.TextField(db_column=column("account", "idToken"), null=True, blank=True)
    access_token_expires_at = models.DateTimeField(
        db_column=column("account", "accessTokenExpiresAt"), null=True, blank=True
    )
    refresh_token_expires_at = models.DateTimeField(
        db_column=column("account", "refreshTokenExpiresAt"), null=True, blank=True
    )
    scope = models.TextField(db_column=column("account", "scope"), null=True, blank=True)
    password = models.TextField(db_column=column("account", "password"), null=True, blank=True)
    created_at = models.DateTimeField(db_column=column("account", "createdAt"))
    updated_at = models.DateTimeField(db_column=column("account", "updatedAt"))

    class Meta:
        managed = False
        db_table = table("account")

    def __str__(self) -> str:
        return f"{self.provider_id} account of {self.user_id}"


class Jwk(models.Model):
    """A signing key of Better Auth's jwt plugin; `id` is the JWT `kid`.

    "expiresAt" (1.4+), "alg" and "crv" (1.5+) are not mapped: accounts/keys.py reads
    them where the table has them, and the algorithm follows from the key itself.
    """

    id = BetterAuthIdField(primary_key=True)
    # The public JWK, as JSON text.
    public_key = models.TextField(db_column=column("jwks", "publicKey"))
    # Encrypted with BETTER_AUTH_SECRET by Better Auth; never read or shown here.
    private_key = models.TextField(db_column=column("jwks", "privateKey"))
    created_at = models.DateTimeField(db_column=column("jwks", "createdAt"))

    class Meta:
        managed = False
        db_table = table("jwks")
        verbose_name = "JWKS key"

    def __str__(self) -> str:
        return f"key {self.id}"
