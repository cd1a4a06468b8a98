"""Better Auth's tables as the app configured them, and as the shared database has them.

Names: Better Auth's defaults, or the app's renames in BETTER_AUTH_SCHEMA, which takes
the very options the app gives `betterAuth()` (and `jwt({schema})`), as JSON:

    BETTER_AUTH_SCHEMA='{"user": {"modelName": "users",
                                  "fields": {"emailVerified": "email_verified"}}}'

Shapes: Better Auth versions and plugins differ in their columns (1.3's jwks has no
"expiresAt", 1.4's no "alg"/"crv"; plugins add columns), and ids may be text, uuid
or integers (`advanced.database.generateId`). What varies is read from the database
itself, never assumed.
"""

import re
import secrets
import threading
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

# Every field of Better Auth's core models (and the jwt plugin's), by its option name.
FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("name", "email", "emailVerified", "image", "createdAt", "updatedAt"),
    "session": (
        "expiresAt", "token", "createdAt", "updatedAt", "ipAddress", "userAgent", "userId",
    ),
    "account": (
        "accountId", "providerId", "userId", "accessToken", "refreshToken", "idToken",
        "accessTokenExpiresAt", "refreshTokenExpiresAt", "scope", "password", "createdAt",
        "updatedAt",
    ),
    "verification": ("identifier", "value", "expiresAt", "createdAt", "updatedAt"),
    "jwks": ("publicKey", "privateKey", "createdAt", "expiresAt", "alg", "crv"),
}  # fmt: skip
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UUID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
INTEGER_TYPES = ("integer", "bigint", "smallint")
MAX_INTEGER = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}


def schema_settings() -> dict[str, dict[str, Any]]:
    """BETTER_AUTH_SCHEMA, checked: only Better Auth's models and fields, renamed to names."""
    value = getattr(settings, "BETTER_AUTH_SCHEMA", None) or {}
    problems = []
    if not isinstance(value, dict):
        problems.append("must be a JSON object of models")
        value = {}
    for model, options in value.items():
        if model not in FIELDS:
            problems.append(f"unknown model {model!r} (expected one of {', '.join(FIELDS)})")
            continue
        if not isinstance(options, dict) or set(options) - {"modelName", "fields"}:
            problems.append(f"{model}: only modelName and fields can be set")
            continue
        if "modelName" in options and not _name(options["modelName"]):
            problems.append(f"{model}.modelName must be a non-empty name")
        fields = options.get("fields", {})
        if not isinstance(fields, dict):
            problems.append(f"{model}.fields must be an object")
            continue
        for field, column in fields.items():
            if field not in FIELDS[model]:
                problems.append(f"{model}.fields: unknown field {field!r}")
            elif not _name(column):
                problems.append(f"{model}.fields.{field} must be a non-empty name")
    if problems:
        raise ImproperlyConfigured("BETTER_AUTH_SCHEMA: " + "; ".join(problems))
    return value


def _name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 63 and "\x00" not in value


def table(model: str) -> str:
    """The table of a Better Auth model ("user" unless renamed with modelName)."""
    return schema_settings().get(model, {}).get("modelName", model)


def column(model: str, field: str) -> str:
    """The column of a Better Auth field ("emailVerified" unless renamed in fields)."""
    return schema_settings().get(model, {}).get("fields", {}).get(field, field)


QUOTED_NAME = re.compile(r'"([^"]+)"')


def renamed_ddl(statement: str, model: str) -> str:
    """Better Auth's DDL of `model` (quoted names) with the configured table and column names."""

    def rename(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in FIELDS:
            return f'"{table(name)}"'
        if name in FIELDS[model]:
            return f'"{column(model, name)}"'
        return match.group(0)  # "id" and index names

    return QUOTED_NAME.sub(rename, statement)


def setting_name(model: str, field: str | None = None) -> str:
    """Where a name comes from, for messages: `BETTER_AUTH_SCHEMA user.fields.emailVerified`."""
    return f"BETTER_AUTH_SCHEMA {model}." + (f"fields.{field}" if field else "modelName")


# The shared database's actual shape -------------------------------------------------


def table_columns(connection: BaseDatabaseWrapper, name: str) -> list[str] | None:
    """The columns of table `name`, or None if it does not exist: one catalog query, which
    cannot fail (so it needs no savepoint inside a transaction)."""
    quoted = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                [quoted],
            )
            columns = [row[0] for row in cursor.fetchall()]
        else:  # SQLite, the embedded default
            cursor.execute(f"PRAGMA table_info({quoted})")
            columns = [row[1] for row in cursor.fetchall()]
    return columns or None


def column_type(connection: BaseDatabaseWrapper, name: str, col: str) -> str | None:
    """The SQL type of `name`.`col` as PostgreSQL spells it (`text`, `uuid`, `integer`)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = %s AND attnum > 0 "
            "AND NOT attisdropped",
            [connection.ops.quote_name(name), col],
        )
        row = cursor.fetchone()
    return row[0] if row else None


class UserIds:
    """What `"user".id` holds here (text, uuid or an integer), learnt once per database.

    A uuid or integer column makes PostgreSQL refuse a malformed value with an error;
    `accepts` turns that into "no such user" before any query.
    """

    def __init__(self) -> None:
        self._types: dict[tuple[Any, ...], str] = {}
        self._lock = threading.Lock()

    def sql_type(self, connection: BaseDatabaseWrapper) -> str:
        key = _database_key(connection)
        if (known := self._types.get(key)) is None:
            known = column_type(connection, table("user"), "id") or "text"
            with self._lock:
                self._types[key] = known
        return known

    def accepts(self, value: str, using: str = "default") -> bool:
        kind = self.sql_type(connections[using])
        if kind == "uuid":
            return UUID.fullmatch(value) is not None
        if kind in INTEGER_TYPES:
            return value.isascii() and value.isdigit() and int(value) <= MAX_INTEGER[kind]
        return True

    def new(self, using: str = "default") -> str | None:
        """A fresh id as Better Auth would make it; None where the database numbers rows."""
        kind = self.sql_type(connections[using])
        if kind == "uuid":
            return str(uuid.uuid4())
        if kind in INTEGER_TYPES:
            return None
        return "".join(secrets.choice(ID_ALPHABET) for _ in range(32))

    def forget(self) -> None:
        with self._lock:
            self._types = {}


def _database_key(connection: BaseDatabaseWrapper) -> tuple[Any, ...]:
    db = connection.settings_dict
    return (connection.alias, db["NAME"], db.get("HOST"), db.get("PORT"))


user_ids = UserIds()
