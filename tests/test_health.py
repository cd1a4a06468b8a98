import pytest
from django.db import OperationalError, connection
from django.urls import reverse

from config import health


def test_liveness_answers_without_touching_the_database(client):
    # No db fixture: any query would raise.
    response = client.get(reverse("health-live"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readiness_reports_the_database_and_its_latency(client):
    response = client.get(reverse("health-ready"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert 0 <= body["latency_ms"] < 100
    assert set(body) == {"status", "database", "latency_ms"}


@pytest.mark.django_db
def test_readiness_is_503_when_the_database_fails(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" failed: secret-detail')

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get(reverse("health-ready"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "error"
    assert "secret-detail" not in response.content.decode()
    assert "db.internal" not in response.content.decode()


@pytest.mark.django_db
def test_readiness_gives_up_on_a_slow_database(client, settings, monkeypatch):
    settings.HEALTH_DB_TIMEOUT_MS = 100
    monkeypatch.setattr(health, "READY_QUERY", "SELECT pg_sleep(5)")
    response = client.get(reverse("health-ready"))
    assert response.status_code == 503
    assert response.json()["latency_ms"] < 1000


@pytest.mark.django_db(transaction=True)  # autocommit, as in production
def test_readiness_timeout_does_not_outlive_the_check(client):
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    client.get(reverse("health-ready"))
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == before


@pytest.mark.parametrize("name", ["health-live", "health-ready"])
def test_probes_are_public_and_reject_writes(client, name, db):
    assert client.get(reverse(name)).status_code == 200
    assert client.head(reverse(name)).status_code == 200
    assert client.post(reverse(name)).status_code == 405
