"""Idempotency-Key records; on PostgreSQL their user FK is ON DELETE CASCADE, as in 0002,
so Better Auth's plain `DELETE FROM "user"` is never blocked by them."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from accounts.better_auth import table

CASCADE_FK = """
DO $$
DECLARE fk text;
BEGIN
    FOR fk IN SELECT conname FROM pg_constraint
        WHERE conrelid = 'task_idempotency_key'::regclass AND contype = 'f'
    LOOP
        EXECUTE format('ALTER TABLE task_idempotency_key DROP CONSTRAINT %I', fk);
    END LOOP;
END $$;
ALTER TABLE task_idempotency_key ADD CONSTRAINT task_idempotency_key_user_fk_cascade
    FOREIGN KEY (user_id) REFERENCES {user_table} (id) ON DELETE CASCADE
    DEFERRABLE INITIALLY DEFERRED;
"""


def cascade_user_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        user_table = schema_editor.quote_name(table("user"))
        schema_editor.execute(CASCADE_FK.format(user_table=user_table), params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('tasks', '0002_postgresql_cascade_and_search_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=255)),
                ('fingerprint', models.CharField(max_length=64)),
                ('response_status', models.PositiveSmallIntegerField()),
                ('response_body', models.JSONField(null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.user')),
            ],
            options={
                'db_table': 'task_idempotency_key',
                'constraints': [models.UniqueConstraint(fields=('user', 'key'), name='idempotency_key_unique_per_user')],
            },
        ),
        # Backwards: the table is dropped with its constraint.
        migrations.RunPython(cascade_user_fk, migrations.RunPython.noop),
    ]
