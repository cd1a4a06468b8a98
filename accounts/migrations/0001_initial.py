"""Map Better Auth's tables and create them only where they do not exist yet.

On a database Better Auth already manages this changes nothing: every statement
of Better Auth's own DDL (accounts/sql/better_auth.sql) whose table is already
there is skipped. On a fresh dev or test database it creates exactly what
Better Auth would. The same DDL runs unchanged on SQLite (the embedded default).
Reversing it never drops Better Auth's tables.
"""

import re
from pathlib import Path

from django.db import migrations, models

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
        table = TABLE_OF.match(statement).group(1)
        if table not in existing:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.RunPython(create_missing_better_auth_tables, migrations.RunPython.noop),
        migrations.CreateModel(
            name="User",
            fields=[
                ("id", models.TextField(primary_key=True, serialize=False)),
                ("name", models.TextField()),
                ("email", models.TextField(unique=True)),
                ("email_verified", models.BooleanField(db_column="emailVerified", default=False)),
                ("image", models.TextField(blank=True, null=True)),
                ("created_at", models.DateTimeField(db_column="createdAt")),
                ("updated_at", models.DateTimeField(db_column="updatedAt")),
            ],
            options={"db_table": "user", "ordering": ["email"], "managed": False},
        ),
        migrations.CreateModel(
            name="Session",
            fields=[
                ("id", models.TextField(primary_key=True, serialize=False)),
                ("token", models.TextField(unique=True)),
                ("expires_at", models.DateTimeField(db_column="expiresAt")),
                ("ip_address", models.TextField(blank=True, db_column="ipAddress", null=True)),
                ("user_agent", models.TextField(blank=True, db_column="userAgent", null=True)),
                ("created_at", models.DateTimeField(db_column="createdAt")),
                ("updated_at", models.DateTimeField(db_column="updatedAt")),
                (
                    "user",
                    models.ForeignKey(
                        db_column="userId",
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="sessions",
                        to="accounts.user",
                    ),
                ),
            ],
            options={"db_table": "session", "managed": False},
        ),
        migrations.CreateModel(
            name="Account",
            fields=[
                ("id", models.TextField(primary_key=True, serialize=False)),
                ("account_id", models.TextField(db_column="accountId")),
                ("provider_id", models.TextField(db_column="providerId")),
                ("access_token", models.TextField(blank=True, db_column="accessToken", null=True)),
                ("refresh_token", models.TextField(blank=True, db_column="refreshToken", null=True)),
                ("id_token", models.TextField(blank=True, db_column="idToken", null=True)),
                (
                    "access_token_expires_at",
                    models.DateTimeField(blank=True, db_column="accessTokenExpiresAt", null=True),
                ),
                (
                    "refresh_token_expires_at",
                    models.DateTimeField(blank=True, db_column="refreshTokenExpiresAt", null=True),
                ),
                ("scope", models.TextField(blank=True, null=True)),
                ("password", models.TextField(blank=True, null=True)),
                ("created_at", models.DateTimeField(db_column="createdAt")),
                ("updated_at", models.DateTimeField(db_column="updatedAt")),
                (
                    "user",
                    models.ForeignKey(
                        db_column="userId",
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="accounts",
                        to="accounts.user",
                    ),
                ),
            ],
            options={"db_table": "account", "managed": False},
        ),
        migrations.CreateModel(
            name="Jwk",
            fields=[
                ("id", models.TextField(primary_key=True, serialize=False)),
                ("public_key", models.TextField(db_column="publicKey")),
                ("private_key", models.TextField(db_column="privateKey")),
                ("created_at", models.DateTimeField(db_column="createdAt")),
                ("expires_at", models.DateTimeField(blank=True, db_column="expiresAt", null=True)),
                ("alg", models.TextField(blank=True, null=True)),
                ("crv", models.TextField(blank=True, null=True)),
            ],
            options={"db_table": "jwks", "verbose_name": "JWKS key", "managed": False},
        ),
    ]
