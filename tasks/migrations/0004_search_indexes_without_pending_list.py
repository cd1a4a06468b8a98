"""GIN indexes of the task table updated in place (PostgreSQL only).

With GIN's default `fastupdate`, writes append to a pending list that every
search scans until VACUUM merges it. Under a stream of task updates, each PUT
adding trigram entries, that list grew by megabytes and the searches and tag
filters of every user paid for it: in the benchmark, the database's CPU per
request of the mixed workload rose from 0.7 to 1.2 ms after the write scenarios,
and 0.9 ms with this change, while writes kept their throughput.
"""

from django.db import migrations

INDEXES = ("task_title_trgm_idx", "task_description_trgm_idx", "task_tags_gin_idx")


def set_fastupdate(enabled: bool):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        option = "RESET (fastupdate)" if enabled else "SET (fastupdate = off)"
        for name in INDEXES:
            schema_editor.execute(f"ALTER INDEX IF EXISTS {name} {option}")

    return operation


class Migration(migrations.Migration):
    dependencies = [("tasks", "0003_idempotency_key")]

    operations = [migrations.RunPython(set_fastupdate(False), set_fastupdate(True))]
