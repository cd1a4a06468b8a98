"""A system check of Better Auth's tables in the shared database (`manage.py check`,
`migrate`, the serve command): what is missing or unsupported, in one message.

Not tagged `database`, so a plain `manage.py check` runs it too. Before accounts'
first migration has run there is nothing to check: that migration creates whatever
is missing.
"""

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

from accounts.better_auth import FIELDS, column, column_type, schema_settings, table_columns

HINT = (
    "Let your Better Auth app migrate its tables (npx @better-auth/cli migrate), or set "
    "BETTER_AUTH_SCHEMA to the modelName/fields options your app gives betterAuth(); "
    "README: 'Supported Better Auth versions and configurations'."
)
SUPPORTED_ID_TYPES = ("text", "character varying", "uuid", "integer", "bigint")


@checks.register()
def better_auth_tables(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        schema_settings()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), hint=HINT, id="accounts.E001")]
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        if not _accounts_migrated(connection):
            return []
        errors, warnings = _inspect(connection)
    except DatabaseError as error:
        first_line = (str(error).strip().splitlines() or [repr(error)])[0]
        return [
            checks.Warning(
                f"Could not inspect Better Auth's tables: {first_line}", id="accounts.W001"
            )
        ]
    messages: list[checks.CheckMessage] = []
    if errors:
        text = "\n  - ".join(["Better Auth's tables do not match the settings:", *errors])
        messages.append(checks.Error(text, hint=HINT, id="accounts.E002"))
    messages += [checks.Warning(text, hint=HINT, id="accounts.W002") for text in warnings]
    return messages


def _accounts_migrated(connection: BaseDatabaseWrapper) -> bool:
    recorder = MigrationRecorder(connection)
    return recorder.has_table() and ("accounts", "0001_initial") in recorder.applied_migrations()


def _inspect(connection: BaseDatabaseWrapper) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the tables of Better Auth's models this service maps."""
    from accounts.models import Account, Jwk, Session, User

    errors: list[str] = []
    warnings: list[str] = []
    for model, name in ((User, "user"), (Session, "session"), (Account, "account"), (Jwk, "jwks")):
        db_table = model._meta.db_table
        present = table_columns(connection, db_table)
        if present is None:
            where = f"no table {db_table!r} ({_option(name)})"
            if model is Jwk and not settings.BETTER_AUTH_JWKS_URL:
                warnings.append(
                    f"{where}: Better Auth JWTs cannot be verified, only session tokens "
                    "(enable and migrate Better Auth's jwt plugin, or set BETTER_AUTH_JWKS_URL)"
                )
            elif model is Account:
                warnings.append(f"{where}: the admin cannot list sign-in accounts")
            elif model is not Jwk:
                errors.append(where)
            continue
        missing = [field for field in model._meta.concrete_fields if field.column not in present]
        errors += [
            f"{db_table!r} has no column {field.column!r} ({_option(name, field)}); "
            f"its columns: {', '.join(present)}"
            for field in missing
        ]
    errors += _id_type_problems(connection)
    return errors, warnings


def _option(model: str, field: models.Field | None = None) -> str:
    """The BETTER_AUTH_SCHEMA option that names this table or column."""
    if field is None:
        return f"BETTER_AUTH_SCHEMA {model}.modelName"
    if field.primary_key:
        return "Better Auth's id column"
    names = [name for name in FIELDS[model] if column(model, name) == field.column]
    return f"BETTER_AUTH_SCHEMA {model}.fields.{names[0] if names else field.column}"


def _id_type_problems(connection: BaseDatabaseWrapper) -> list[str]:
    from accounts.models import User
    from tasks.models import Task

    id_type = column_type(connection, User._meta.db_table, "id")
    if id_type is None:
        return []  # no such table (reported above), or SQLite
    if not id_type.startswith(SUPPORTED_ID_TYPES):
        return [f'"user".id has type {id_type}; supported: text, uuid, integer, bigint']
    task_type = column_type(connection, Task._meta.db_table, "user_id")
    if task_type is not None and task_type != id_type:
        return [
            f"{Task._meta.db_table}.user_id has type {task_type} but the users' id has "
            f"type {id_type}: the task table was made for another user table"
        ]
    return []
