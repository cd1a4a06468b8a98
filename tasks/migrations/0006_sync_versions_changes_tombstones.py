"""Versions, the changes feed and tombstones (issue 19), kept by database triggers.

Every writer goes through them, the API's one-statement writes, the admin and plain
SQL alike:

- INSERT or UPDATE of a task stamps `change_seq` with the next value of one sequence,
  taken under a per-user transaction lock (`task_sync_lock`, an advisory lock), so
  one user's changes commit in the order of their numbers and a changes-feed cursor
  (the last number seen) never skips a change that commits late. An UPDATE that
  does not bump `version` itself (the admin's save) gets it bumped.
- An INSERT whose `position` is negative is appended: max + 1 under the same lock,
  so concurrent creates get distinct positions.
- DELETE leaves a tombstone (`task_tombstone`) numbered from the same sequence,
  except for the tasks of a user being deleted (Better Auth's cascade).

PostgreSQL: a sequence, a lock function and plpgsql triggers. SQLite (the embedded
default, one writer at a time): a one-row counter and AFTER triggers.
"""

import django.db.models.deletion
from django.db import migrations, models

from accounts.better_auth import table

LOCK_NAMESPACE = 1413567307  # advisory lock class of this service: "TASK" in ASCII

POSTGRESQL = [
    "CREATE SEQUENCE IF NOT EXISTS task_change_seq",
    # Existing tasks get their numbers in creation order, before the triggers exist.
    "UPDATE task SET change_seq = numbered.seq FROM (SELECT id, nextval('task_change_seq') "
    "AS seq FROM (SELECT id FROM task ORDER BY created_at, id) AS ordered) AS numbered "
    "WHERE task.id = numbered.id",
    f"""
CREATE OR REPLACE FUNCTION task_sync_lock(owner text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Held to the end of the transaction: one user's writers take turns.
    PERFORM pg_advisory_xact_lock({LOCK_NAMESPACE}, hashtext(owner));
    RETURN true;
END $$""",
    """
CREATE OR REPLACE FUNCTION task_sync_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_sync_lock(NEW.user_id::text);
    NEW.change_seq := nextval('task_change_seq');
    IF TG_OP = 'INSERT' THEN
        IF NEW.position < 0 THEN
            -- A fresh snapshot, taken after the lock: every committed create counts.
            SELECT least(coalesce(max(position)::bigint + 1, 0), 2147483647) INTO NEW.position
            FROM task WHERE user_id = NEW.user_id;
        END IF;
    ELSIF NEW.version = OLD.version THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$""",
    """
CREATE OR REPLACE FUNCTION task_sync_tombstone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) THEN
        PERFORM task_sync_lock(OLD.user_id::text);
        INSERT INTO task_tombstone (task_id, user_id, seq, deleted_at)
        VALUES (OLD.id, OLD.user_id, nextval('task_change_seq'), clock_timestamp())
        ON CONFLICT (task_id) DO UPDATE SET seq = excluded.seq, deleted_at = excluded.deleted_at;
    END IF;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER task_sync_stamp BEFORE INSERT OR UPDATE ON task "
    "FOR EACH ROW EXECUTE FUNCTION task_sync_stamp()",
    "CREATE TRIGGER task_sync_tombstone AFTER DELETE ON task "
    "FOR EACH ROW EXECUTE FUNCTION task_sync_tombstone()",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS task_sync_stamp ON task",
    "DROP TRIGGER IF EXISTS task_sync_tombstone ON task",
    "DROP FUNCTION IF EXISTS task_sync_stamp()",
    "DROP FUNCTION IF EXISTS task_sync_tombstone()",
    "DROP FUNCTION IF EXISTS task_sync_lock(text)",
    "DROP SEQUENCE IF EXISTS task_change_seq",
]

# SQLite runs one write transaction at a time: a counter row is the sequence. Its
# AFTER triggers cannot change NEW, so they update the row again (recursive triggers
# are off); the API reads a task back after writing it there.
_NEXT = "UPDATE task_sync_counter SET value = value + 1 WHERE id = 1;"
_VALUE = "(SELECT value FROM task_sync_counter WHERE id = 1)"
SQLITE = [
    "CREATE TABLE task_sync_counter (id integer PRIMARY KEY CHECK (id = 1), value integer NOT NULL)",
    "INSERT INTO task_sync_counter (id, value) VALUES (1, (SELECT count(*) FROM task))",
    "UPDATE task SET change_seq = (SELECT count(*) FROM task AS earlier WHERE "
    "earlier.created_at < task.created_at OR (earlier.created_at = task.created_at "
    "AND earlier.id <= task.id))",
    f"""
CREATE TRIGGER task_sync_insert AFTER INSERT ON task BEGIN
    {_NEXT}
    UPDATE task SET change_seq = {_VALUE}, position = CASE WHEN NEW.position < 0 THEN
        (SELECT min(coalesce(max(position) + 1, 0), 2147483647) FROM task
         WHERE user_id = NEW.user_id AND id <> NEW.id) ELSE NEW.position END
    WHERE id = NEW.id;
END""",
    f"""
CREATE TRIGGER task_sync_update AFTER UPDATE ON task
WHEN NEW.change_seq = OLD.change_seq BEGIN  -- not the triggers' own updates
    {_NEXT}
    UPDATE task SET change_seq = {_VALUE}, version = CASE WHEN NEW.version = OLD.version
        THEN OLD.version + 1 ELSE NEW.version END
    WHERE id = NEW.id;
END""",
    f"""
CREATE TRIGGER task_sync_delete AFTER DELETE ON task
WHEN EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) BEGIN
    {_NEXT}
    INSERT OR REPLACE INTO task_tombstone (task_id, user_id, seq, deleted_at)
    VALUES (OLD.id, OLD.user_id, {_VALUE}, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS task_sync_insert",
    "DROP TRIGGER IF EXISTS task_sync_update",
    "DROP TRIGGER IF EXISTS task_sync_delete",
    "DROP TABLE IF EXISTS task_sync_counter",
]


def run(statements: dict[str, list[str]]):
    def operation(apps, schema_editor):
        # Better Auth's user table as the app names it (BETTER_AUTH_SCHEMA), not "user".
        users = schema_editor.quote_name(table("user"))
        for statement in statements.get(schema_editor.connection.vendor, []):
            statement = statement.replace('FROM "user" WHERE', f"FROM {users} WHERE")
            schema_editor.execute(statement, params=None)

    return operation



class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('tasks', '0005_search_index_statistics'),
    ]

    operations = [
        migrations.CreateModel(
            name='TaskTombstone',
            fields=[
                ('task_id', models.UUIDField(primary_key=True, serialize=False)),
                ('seq', models.BigIntegerField()),
                ('deleted_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'task_tombstone',
            },
        ),
        migrations.AddField(
            model_name='task',
            name='change_seq',
            field=models.BigIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name='task',
            name='version',
            field=models.BigIntegerField(db_default=1, default=1, editable=False),
        ),
        migrations.AddIndex(
            model_name='task',
            index=models.Index(fields=['user', 'change_seq', 'completed'], name='task_user_change_seq_idx'),
        ),
        migrations.AddField(
            model_name='tasktombstone',
            name='user',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.user'),
        ),
        migrations.AddIndex(
            model_name='tasktombstone',
            index=models.Index(fields=['user', 'seq'], name='task_tombstone_user_seq_idx'),
        ),
        migrations.AddIndex(
            model_name='tasktombstone',
            index=models.Index(fields=['deleted_at'], name='task_tombstone_deleted_idx'),
        ),
        migrations.RunPython(
            run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
