"""An index that answers a user's stats alone, replacing its own prefix (issue 20).

The stats (`services._stats_rows`, the profile's and `/api/tasks/stats`) count rows
grouped by (completed, priority, category), overdue ones by `due_date`. With every
column they read in one index, in the GROUP BY's order, PostgreSQL answers from the
index alone (an index-only scan feeding a group aggregate) instead of reading the
user's heap rows into a hash aggregate.

`task_user_completed_idx` (user, completed) is the new index's leading prefix: every
query that used it (the `completed`/`status`/`overdue` filters, their counts) is
served by the new one, or by another, so it goes and a write still updates as many
indexes as before. Created before the old one is dropped.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('tasks', '0007_task_count_per_user'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='task',
            index=models.Index(fields=['user', 'completed', 'priority', 'category', 'due_date'], name='task_user_stats_idx'),
        ),
        migrations.RemoveIndex(
            model_name='task',
            name='task_user_completed_idx',
        ),
    ]
