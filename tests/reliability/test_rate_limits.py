"""429 RATE_LIMITED with Retry-After: writes per user, authentication failures per IP."""

import datetime
import os
import subprocess
import sys
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from ratelimit import limits as limits_module
from ratelimit import middleware
from ratelimit.limits import PURGE_INTERVAL_SECONDS, Rate, hit, parse_rate, purge_expired
from ratelimit.models import RateLimitCounter
from tasks.models import Task
from tests.factories import TaskFactory
from tests.reliability.server import ROOT
from tests.tokens import app_token

pytestmark = pytest.mark.django_db

# 30 s into a minute: a whole test runs inside one window.
START = datetime.datetime(2026, 3, 1, 12, 0, 30, tzinfo=datetime.UTC)
BAD_TOKEN: dict[str, Any] = {"HTTP_AUTHORIZATION": "Bearer not-a-valid-token"}


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def limits(settings, clock):
    settings.RATE_LIMIT_WRITES = "3/minute"
    settings.RATE_LIMIT_AUTH_FAILURES = "3/minute"
    middleware.reset()
    yield settings
    middleware.reset()


def assert_rate_limited(response, max_wait=60):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"]["code"] == "RATE_LIMITED"
    assert body["detail"] == body["error"]["message"]
    assert 1 <= int(response["Retry-After"]) <= max_wait


def create(client):
    return client.post(reverse("task-list"), {"title": "x"}, format="json")


@pytest.mark.usefixtures("limits")
class TestWrites:
    def test_writes_over_the_limit_are_429_and_write_nothing(self, auth_client, user):
        assert [create(auth_client).status_code for _ in range(3)] == [201] * 3
        response = create(auth_client)
        assert_rate_limited(response, max_wait=30)
        assert response["Retry-After"] == "30"  # the minute window ends at 12:01:00
        assert Task.objects.filter(user=user).count() == 3

    def test_reads_are_not_limited(self, auth_client, user):
        for _ in range(3):
            create(auth_client)
        for _ in range(5):
            assert auth_client.get(reverse("task-list")).status_code == 200

    def test_every_write_method_counts(self, auth_client, user):
        task = TaskFactory(user=user)
        auth_client.patch(reverse("task-detail", args=[task.pk]), {"title": "y"}, format="json")
        auth_client.patch(reverse("task-toggle", args=[task.pk]))
        auth_client.put(reverse("me"), {"name": "New"}, format="json")
        assert_rate_limited(auth_client.delete(reverse("task-detail", args=[task.pk])))
        assert Task.objects.filter(pk=task.pk).exists()

    def test_the_limit_is_per_user(self, auth_client, user, other_user):
        for _ in range(4):
            create(auth_client)
        other = APIClient()
        other.force_authenticate(other_user)
        assert create(other).status_code == 201

    def test_refused_requests_do_not_use_up_writes(self, auth_client, user, other_user):
        for _ in range(5):  # 403: someone else's user_id in the path
            auth_client.post(reverse("user:task-list", args=[other_user.pk]), {"title": "x"})
        assert create(auth_client).status_code == 201

    def test_the_limit_resets_with_the_next_window(self, auth_client, user, clock):
        for _ in range(4):
            create(auth_client)
        clock.shift(30)
        assert create(auth_client).status_code == 201

    def test_a_write_costs_one_more_query(
        self, auth_client, user, django_assert_num_queries, settings
    ):
        settings.TASK_QUOTA_PER_USER = 0  # its count is test_queries'
        with django_assert_num_queries(2):  # the counter upsert, the insert (appends itself)
            assert create(auth_client).status_code == 201


@pytest.mark.usefixtures("limits")
class TestAuthenticationFailures:
    def test_failures_over_the_limit_are_429(self, api_client):
        for _ in range(3):
            assert api_client.get(reverse("task-list"), **BAD_TOKEN).status_code == 401
        assert_rate_limited(api_client.get(reverse("task-list"), **BAD_TOKEN), max_wait=30)

    def test_valid_credentials_from_a_blocked_client_are_served(self, api_client, user):
        for _ in range(4):
            api_client.get(reverse("task-list"), **BAD_TOKEN)
        good = APIClient()
        good.credentials(HTTP_AUTHORIZATION=f"Bearer {app_token(user.id)}")
        assert good.get(reverse("task-list")).status_code == 200  # same address, served
        assert_rate_limited(api_client.get(reverse("task-list"), **BAD_TOKEN))
        assert api_client.get(reverse("health-live"), **BAD_TOKEN).status_code == 200

    def test_ipv6_clients_are_counted_per_64(self, api_client):
        for n in range(3):
            client = APIClient(REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}")
            assert client.get(reverse("task-list"), **BAD_TOKEN).status_code == 401
        same_64 = APIClient(REMOTE_ADDR="2001:db8:1:2:ffff:ffff:ffff:ffff")
        assert_rate_limited(same_64.get(reverse("task-list"), **BAD_TOKEN))
        other_64 = APIClient(REMOTE_ADDR="2001:db8:1:3::1")
        assert other_64.get(reverse("task-list"), **BAD_TOKEN).status_code == 401
        assert RateLimitCounter.objects.filter(key="auth-failure:2001:db8:1:2::/64").exists()

    def test_requests_without_credentials_are_not_counted(self, api_client):
        for _ in range(5):
            assert api_client.get(reverse("task-list")).status_code == 401
        assert api_client.get(reverse("task-list"), **BAD_TOKEN).status_code == 401

    def test_a_bad_session_cookie_counts(self, api_client):
        api_client.cookies["better-auth.session_token"] = "forged.value"
        for _ in range(3):
            assert api_client.get(reverse("task-list")).status_code == 401
        assert_rate_limited(api_client.get(reverse("task-list")))

    def test_the_count_is_shared_by_processes(self, api_client):
        for _ in range(4):
            api_client.get(reverse("task-list"), **BAD_TOKEN)
        middleware.reset()  # another worker: it has not seen the block, the database has
        assert_rate_limited(api_client.get(reverse("task-list"), **BAD_TOKEN))

    def test_x_forwarded_for_is_ignored_without_trusted_proxies(self, api_client):
        for n in range(4):
            response = api_client.get(
                reverse("task-list"), HTTP_X_FORWARDED_FOR=f"198.51.100.{n}", **BAD_TOKEN
            )
        assert_rate_limited(response)

    def test_with_a_trusted_proxy_the_forwarded_client_is_counted(self, api_client, settings):
        settings.RATE_LIMIT_NUM_PROXIES = 1
        for n in range(4):
            response = api_client.get(
                reverse("task-list"), HTTP_X_FORWARDED_FOR=f"198.51.100.{n}", **BAD_TOKEN
            )
            assert response.status_code == 401
        assert RateLimitCounter.objects.filter(key="auth-failure:198.51.100.3").exists()

    def test_the_block_ends_with_the_window(self, api_client, clock):
        for _ in range(4):
            api_client.get(reverse("task-list"), **BAD_TOKEN)
        clock.shift(30)
        assert api_client.get(reverse("task-list"), **BAD_TOKEN).status_code == 401


class TestLimits:
    @pytest.mark.parametrize(
        ("text", "rate"),
        [("600/minute", Rate(600, 60)), ("5/s", Rate(5, 1)), (" 10 / hour ", Rate(10, 3600)),
         ("1/day", Rate(1, 86400)), ("", None), (None, None), ("0/minute", None)],
    )  # fmt: skip
    def test_parse_rate(self, text, rate):
        assert parse_rate(text) == rate

    @pytest.mark.parametrize("text", ["many", "10/fortnight", "-1/minute", "1.5/s", "/minute"])
    def test_invalid_rates_are_refused(self, text):
        with pytest.raises(ValueError, match="invalid rate"):
            parse_rate(text)

    def test_hits_count_within_a_window_and_restart_after_it(self):
        rate = Rate(2, 60)
        assert [hit("k", rate, now=120.0), hit("k", rate, now=150.5)] == [None, None]
        assert hit("k", rate, now=179.2) == 1
        assert hit("k", rate, now=180.0) is None

    def test_purge_deletes_only_finished_windows(self, monkeypatch):
        monkeypatch.setattr(limits_module, "_next_purge", float("inf"))  # no purge by hit()
        hit("old", Rate(5, 60), now=100.0)
        hit("current", Rate(5, 60), now=1000.0)
        assert purge_expired(now=1000.0) == 1
        assert list(RateLimitCounter.objects.values_list("key", flat=True)) == ["current"]

    def test_hits_purge_finished_windows_at_most_every_interval(self, monkeypatch):
        monkeypatch.setattr(limits_module, "_next_purge", 0.0)  # a process's first hit

        def keys():
            return set(RateLimitCounter.objects.values_list("key", flat=True))

        hit("old", Rate(5, 60), now=100.0)  # purges now; the next purge is due at 400
        hit("soon", Rate(5, 60), now=100.0 + PURGE_INTERVAL_SECONDS - 1)
        assert keys() == {"old", "soon"}  # old's window ended at 120: too soon to purge
        hit("due", Rate(5, 60), now=100.0 + PURGE_INTERVAL_SECONDS)
        assert keys() == {"soon", "due"}


def test_an_invalid_rate_in_the_environment_fails_the_start():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "RATE_LIMIT_WRITES": "lots"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "RATE_LIMIT_WRITES: invalid rate 'lots'" in result.stderr


def test_counters_live_in_an_unlogged_table():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'rate_limit_counter'")
        assert cursor.fetchone() == ("u",)  # no WAL: a crash only restarts the counts
