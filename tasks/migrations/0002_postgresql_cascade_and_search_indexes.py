"""PostgreSQL-only DDL that Django 5.2 cannot express.

1. The owner FK becomes ON DELETE CASCADE in the database: Better Auth deletes
   users with plain SQL, where Django's on_delete never runs.
2. Trigram GIN indexes on UPPER(title/description), the exact expressions of
   Django's `icontains`, keep `search=` fast at 100k tasks per user; a GIN index
   on `tags` serves the `tags @>` containment filter. pg_trgm needs CREATE
   privilege on the database; without it the search indexes are skipped (search
   still works, just slower) rather than failing the deploy.
"""

import logging

from django.db import migrations, transaction

from accounts.better_auth import table

logger = logging.getLogger(__name__)

CASCADE_FK = """
DO $$
DECLARE fk text;
BEGIN
    FOR fk IN SELECT conname FROM pg_constraint
        WHERE conrelid = 'task'::regclass AND contype = 'f'
          AND confrelid = '{user_literal}'::regclass
    LOOP
        EXECUTE format('ALTER TABLE task DROP CONSTRAINT %I', fk);
    END LOOP;
END $$;
ALTER TABLE task ADD CONSTRAINT task_user_id_fk_user_cascade
    FOREIGN KEY (user_id) REFERENCES {user_table} (id) ON DELETE CASCADE
    DEFERRABLE INITIALLY DEFERRED;
"""

RESTORE_FK = """
ALTER TABLE task DROP CONSTRAINT IF EXISTS task_user_id_fk_user_cascade;
ALTER TABLE task ADD CONSTRAINT task_user_id_fk_user
    FOREIGN KEY (user_id) REFERENCES {user_table} (id) DEFERRABLE INITIALLY DEFERRED;
"""

SEARCH_INDEXES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS task_title_trgm_idx ON task "
    "USING gin (UPPER(title::text) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS task_description_trgm_idx ON task "
    "USING gin (UPPER(description::text) gin_trgm_ops)",
]
TAGS_INDEX = "CREATE INDEX IF NOT EXISTS task_tags_gin_idx ON task USING gin (tags jsonb_path_ops)"
DROP_INDEXES = [
    "DROP INDEX IF EXISTS task_title_trgm_idx",
    "DROP INDEX IF EXISTS task_description_trgm_idx",
    "DROP INDEX IF EXISTS task_tags_gin_idx",
]


def user_table(schema_editor):
    """Better Auth's user table (renamed with BETTER_AUTH_SCHEMA or not), quoted for the SQL."""
    quoted = schema_editor.quote_name(table("user"))
    return {"user_table": quoted, "user_literal": quoted.replace("'", "''")}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CASCADE_FK.format(**user_table(schema_editor)), params=None)
    schema_editor.execute(TAGS_INDEX)
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            for statement in SEARCH_INDEXES:
                schema_editor.execute(statement)
    except Exception as error:  # noqa: BLE001 - a missing privilege must not block a deploy
        logger.warning("skipped trigram search indexes: %s", error)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in DROP_INDEXES:
        schema_editor.execute(statement)
    schema_editor.execute(RESTORE_FK.format(**user_table(schema_editor)), params=None)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
