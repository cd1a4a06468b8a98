from django.db import connection


def test_suite_runs_against_postgresql(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
    print(f"\nrunning against: {version}")
    assert connection.vendor == "postgresql"
    assert version.startswith("PostgreSQL")
