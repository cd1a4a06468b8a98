"""Better Auth's own tables, mapped read-mostly for Django.

Mapping source: the DDL a real Better Auth 1.7 server ran on PostgreSQL
(`accounts/sql/better_auth.sql`, copied from the measured schema). Better Auth
creates and migrates these tables; Django never does (`managed = False`), apart
from the create-if-absent bootstrap in `accounts/migrations/0001_initial.py`.

Left out: the `verification` table (email and password-reset codes; nothing here
reads it). Column names are camelCase in the database and snake_case here.
"""

from functools import cached_property

from django.db import models

from config.sql import fetch_instance


class UserManager(models.Manager["User"]):
    def by_id(self, user_id: str) -> "User | None":
        """The user with this id, or None; what every authenticated request runs.

        The ORM builds and compiles the same SELECT on every call; here Django builds
        it once and each call only runs it: 205 -> 117 µs of CPU as a RawQuerySet,
        less again without RawQuerySet's per-call column mapping (see fetch_instance).
        """
        return fetch_instance(self.model, self._by_id_sql, [user_id])

    @cached_property
    def _by_id_sql(self) -> str:
        sql, _ = self.filter(pk="").order_by().query.sql_with_params()
        return sql


class User(models.Model):
    """A Better Auth user (`"user"` table); what `request.user` is for API calls."""

    id = models.TextField(primary_key=True)
    name = models.TextField()
    email = models.TextField(unique=True)
    email_verified = models.BooleanField(db_column="emailVerified", default=False)
    image = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(db_column="createdAt")
    updated_at = models.DateTimeField(db_column="updatedAt")

    # DRF's IsAuthenticated and Django's request machinery read these.
    is_authenticated = True
    is_anonymous = False
    is_active = True

    objects = UserManager()

    class Meta:
        managed = False
        db_table = "user"
        ordering = ["email"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class Session(models.Model):
    """A Better Auth session; signing out deletes the row."""

    id = models.TextField(primary_key=True)
    token = models.TextField(unique=True)
    user = models.ForeignKey(User, models.DO_NOTHING, db_column="userId", related_name="sessions")
    expires_at = models.DateTimeField(db_column="expiresAt")
    ip_address = models.TextField(db_column="ipAddress", null=True, blank=True)
    user_agent = models.TextField(db_column="userAgent", null=True, blank=True)
    created_at = models.DateTimeField(db_column="createdAt")
    updated_at = models.DateTimeField(db_column="updatedAt")

    class Meta:
        managed = False
        db_table = "session"

    def __str__(self) -> str:
        return f"session {self.id} of {self.user_id}"


class Account(models.Model):
    """A sign-in method of a user (password, OAuth provider); read-only here."""

    id = models.TextField(primary_key=True)
    account_id = models.TextField(db_column="accountId")
    provider_id = models.TextField(db_column="providerId")
    user = models.ForeignKey(User, models.DO_NOTHING, db_column="userId", related_name="accounts")
    access_token = models.TextField(db_column="accessToken", null=True, blank=True)
    refresh_token = models.TextField(db_column="refreshToken", null=True, blank=True)
    id_token = models.TextField(db_column="idToken", null=True, blank=True)
    access_token_expires_at = models.DateTimeField(
        db_column="accessTokenExpiresAt", null=True, blank=True
    )
    refresh_token_expires_at = models.DateTimeField(
        db_column="refreshTokenExpiresAt", null=True, blank=True
    )
    scope = models.TextField(null=True, blank=True)
    password = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(db_column="createdAt")
    updated_at = models.DateTimeField(db_column="updatedAt")

    class Meta:
        managed = False
        db_table = "account"

    def __str__(self) -> str:
        return f"{self.provider_id} account of {self.user_id}"


class Jwk(models.Model):
    """A signing key of Better Auth's jwt plugin; `id` is the JWT `kid`."""

    id = models.TextField(primary_key=True)
    public_key = models.TextField(db_column="publicKey")  # the public JWK, as JSON text
    # Encrypted with BETTER_AUTH_SECRET by Better Auth; never read or shown here.
    private_key = models.TextField(db_column="privateKey")
    created_at = models.DateTimeField(db_column="createdAt")
    expires_at = models.DateTimeField(db_column="expiresAt", null=True, blank=True)
    alg = models.TextField(null=True, blank=True)
    crv = models.TextField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "jwks"
        verbose_name = "JWKS key"

    def __str__(self) -> str:
        return f"{self.alg or 'EdDSA'} key {self.id}"
