"""Rate-limit counters in an UNLOGGED table (PostgreSQL only).

Every write request counts one hit, and in autocommit each hit is a commit that
waits for its WAL to reach the disk: one more flush per write, for numbers that
only matter for the current window. An unlogged table writes no WAL. Its rows are
lost if PostgreSQL crashes (and are not copied to standbys): the limits then
start counting again, which a rate limit can afford.
"""

from django.db import migrations


def set_logged(logged: bool):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(
            f"ALTER TABLE rate_limit_counter SET {'LOGGED' if logged else 'UNLOGGED'}"
        )

    return operation


class Migration(migrations.Migration):
    dependencies = [("ratelimit", "0001_initial")]

    operations = [migrations.RunPython(set_logged(False), set_logged(True))]
