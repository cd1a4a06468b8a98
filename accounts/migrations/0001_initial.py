"""Map Better Auth's tables and create them only where they do not exist yet.

On a database Better Auth already manages this changes nothing: every statement
of Better Auth's own DDL (accounts/sql/better_auth.sql) whose table is already
there is skipped. On a fresh dev or test database it creates exactly what
Better Auth would, under the names the settings give (BETTER_AUTH_SCHEMA). The
same DDL runs unchanged on SQLite (the embedded default). Reversing it never
drops Better Auth's tables.

The mapped names come from the settings, and `"user".id`'s type from the database
(accounts.models.UserIdField), so the foreign keys of later migrations match.
"""

import re
from pathlib import Path

from django.db import migrations, models

import accounts.models
from accounts.better_auth import column, renamed_ddl, table

DDL = Path(__file__).resolve().parent.parent / "sql" / "better_auth.sql"
TABLE_OF = re.compile(r'^create (?:table|index "[^"]+" on) "([^"]+)"', re.IGNORECASE)


def create_missing_better_auth_tables(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
    for statement in DDL.read_text().split(";"):
        statement = statement.strip()
        if not statement:
            continue
        match = TABLE_OF.match(statement)
        assert match, statement  # the DDL file holds CREATE TABLE statements only
        model = match.group(1)
        if table(model) not in existing:
            schema_editor.execute(renamed_ddl(statement, model))


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.RunPython(create_missing_better_auth_tables, migrations.RunPython.noop),
        migrations.CreateModel(
            name="User",
            fields=[
                ("id", accounts.models.UserIdField(primary_key=True, serialize=False)),
                ("name", models.TextField(db_column=column("user", "name"))),
                ("email", models.TextField(db_column=column("user", "email"), unique=True)),
                (
                    "email_verified",
                    models.BooleanField(db_column=column("user", "emailVerified"), default=False),
                ),
                ("image", models.TextField(blank=True, db_column=column("user", "image"), null=True)),
                ("created_at", models.DateTimeField(db_column=column("user", "createdAt"))),
                ("updated_at", models.DateTimeField(db_column=column("user", "updatedAt"))),
            ],
            options={"db_table": table("user"), "ordering": ["email"], "managed": False},
        ),
        migrations.CreateModel(
            name="Session",
            fields=[
                ("id", accounts.models.BetterAuthIdField(primary_key=True, serialize=False)),
                ("token", models.TextField(db_column=column("session", "token"), unique=True)),
                ("expires_at", models.DateTimeField(db_column=column("session", "expiresAt"))),
                (
                    "ip_address",
                    models.TextField(blank=True, db_column=column("session", "ipAddress"), null=True),
                ),
                (
                    "user_agent",
                    models.TextField(blank=True, db_column=column("session", "userAgent"), null=True),
                ),
                ("created_at", models.DateTimeField(db_column=column("session", "createdAt"))),
                ("updated_at", models.DateTimeField(db_column=column("session", "updatedAt"))),
                (
                    "user",
                    models.ForeignKey(
                        db_column=column("session", "userId"),
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="sessions",
                        to="accounts.user",
                    ),
                ),
            ],
            options={"db_table": table("session"), "managed": False},
        ),
        migrations.CreateModel(
            name="Account",
            fields=[
                ("id", accounts.models.BetterAuthIdField(primary_key=True, serialize=False)),
                ("account_id", models.TextField(db_column=column("account", "accountId"))),
                ("provider_id", models.TextField(db_column=column("account", "providerId"))),
                (
                    "access_token",
                    models.TextField(blank=True, db_column=column("account", "accessToken"), null=True),
                ),
                (
                    "refresh_token",
                    models.TextField(blank=True, db_column=column("account", "refreshToken"), null=True),
                ),
                ("id_token", models.TextField(blank=True, db_column=column("account", "idToken"), null=True)),
                (
                    "access_token_expires_at",
                    models.DateTimeField(
                        blank=True, db_column=column("account", "accessTokenExpiresAt"), null=True
                    ),
                ),
                (
                    "refresh_token_expires_at",
                    models.DateTimeField(
                        blank=True, db_column=column("account", "refreshTokenExpiresAt"), null=True
                    ),
                ),
                ("scope", models.TextField(blank=True, db_column=column("account", "scope"), null=True)),
                ("password", models.TextField(blank=True, db_column=column("account", "password"), null=True)),
                ("created_at", models.DateTimeField(db_column=column("account", "createdAt"))),
                ("updated_at", models.DateTimeField(db_column=column("account", "updatedAt"))),
                (
                    "user",
                    models.ForeignKey(
                        db_column=column("account", "userId"),
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="accounts",
                        to="accounts.user",
                    ),
                ),
            ],
            options={"db_table": table("account"), "managed": False},
        ),
        migrations.CreateModel(
            name="Jwk",
            fields=[
                ("id", accounts.models.BetterAuthIdField(primary_key=True, serialize=False)),
                ("public_key", models.TextField(db_column=column("jwks", "publicKey"))),
                ("private_key", models.TextField(db_column=column("jwks", "privateKey"))),
                ("created_at", models.DateTimeField(db_column=column("jwks", "createdAt"))),
            ],
            options={"db_table": table("jwks"), "verbose_name": "JWKS key", "managed": False},
        ),
    ]
