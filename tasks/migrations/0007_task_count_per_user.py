"""The quota's count kept by the database, and checked in the create's own INSERT (issue 20).

A create used to count the user's tasks first (up to the quota: up to 10,000 index
entries) in a statement of its own. Now:

- `task_owner_count` holds each user's number of tasks, kept by triggers like 0006's
  (every writer: the API, the admin, plain SQL, COPY): +1 after an INSERT, -1 after a
  DELETE, both for an UPDATE that moves a task to another user, emptied by TRUNCATE. A
  user deleted by Better Auth (the cascade) loses the row.
- `task_quota_allows(owner, quota)` is the condition of an API create's
  `INSERT ... SELECT ... WHERE`: it takes the user's lock and reads the count in a
  snapshot taken after the lock, so every committed create and delete counts. Over
  the quota the INSERT inserts nothing, and raises nothing (an enclosing transaction
  goes on). So the quota holds exactly, even for creates racing each other, at no
  extra round trip; 0006's trigger then appends the task under the same lock.

PostgreSQL only: SQLite (one writer at a time) counts the user's tasks as before.
"""

import importlib

from django.db import migrations

sync = importlib.import_module("tasks.migrations.0006_sync_versions_changes_tombstones")

# One more task for NEW's owner; the row is created with the first.
ADD_ONE = """
    INSERT INTO task_owner_count AS counted (user_id, tasks) VALUES (NEW.user_id::text, 1)
    ON CONFLICT (user_id) DO UPDATE SET tasks = counted.tasks + 1;"""
SUBTRACT_ONE = "UPDATE task_owner_count SET tasks = tasks - 1 WHERE user_id = OLD.user_id::text;"

# 0006's tombstone trigger, which holds the user's lock, counts the deletion too; a
# user being deleted (no tombstones then) loses their count.
TOMBSTONE_0006 = next(sql for sql in sync.POSTGRESQL if "FUNCTION task_sync_tombstone()" in sql)
TOMBSTONE = TOMBSTONE_0006.replace(
    "    END IF;",
    f"        {SUBTRACT_ONE}\n    ELSE\n"
    "        DELETE FROM task_owner_count WHERE user_id = OLD.user_id::text;\n    END IF;",
)
assert TOMBSTONE != TOMBSTONE_0006

POSTGRESQL = [
    # Keyed by the owner's id as text, whatever its type (Better Auth: text, uuid, serial).
    "CREATE TABLE task_owner_count (user_id text PRIMARY KEY, tasks integer NOT NULL)",
    # Exact from the start: writers wait for the few statements of this migration.
    "LOCK TABLE task IN SHARE MODE",
    "INSERT INTO task_owner_count (user_id, tasks) "
    "SELECT user_id::text, count(*) FROM task GROUP BY user_id",
    f"""
CREATE OR REPLACE FUNCTION task_count_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN{ADD_ONE}
    RETURN NULL;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION task_count_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {SUBTRACT_ONE}{ADD_ONE}
    RETURN NULL;
END $$""",
    """
CREATE OR REPLACE FUNCTION task_count_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM task_owner_count;
    RETURN NULL;
END $$""",
    TOMBSTONE,
    """
CREATE OR REPLACE FUNCTION task_quota_allows(owner text, quota integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM task_sync_lock(owner);
    -- A fresh snapshot, taken after the lock: every committed create and delete counts.
    RETURN coalesce((SELECT tasks FROM task_owner_count WHERE user_id = owner), 0) < quota;
END $$""",
    "CREATE TRIGGER task_count_added AFTER INSERT ON task "
    "FOR EACH ROW EXECUTE FUNCTION task_count_added()",
    "CREATE TRIGGER task_count_moved AFTER UPDATE OF user_id ON task FOR EACH ROW "
    "WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION task_count_moved()",
    "CREATE TRIGGER task_count_truncated AFTER TRUNCATE ON task "
    "FOR EACH STATEMENT EXECUTE FUNCTION task_count_truncated()",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS task_count_added ON task",
    "DROP TRIGGER IF EXISTS task_count_moved ON task",
    "DROP TRIGGER IF EXISTS task_count_truncated ON task",
    "DROP FUNCTION IF EXISTS task_quota_allows(text, integer)",
    "DROP FUNCTION IF EXISTS task_count_added()",
    "DROP FUNCTION IF EXISTS task_count_moved()",
    "DROP FUNCTION IF EXISTS task_count_truncated()",
    TOMBSTONE_0006,
    "DROP TABLE IF EXISTS task_owner_count",
]


class Migration(migrations.Migration):
    dependencies = [("tasks", "0006_sync_versions_changes_tombstones")]

    operations = [
        migrations.RunPython(
            sync.run({"postgresql": POSTGRESQL}), sync.run({"postgresql": POSTGRESQL_REVERSE})
        ),
    ]
