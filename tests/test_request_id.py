import json
import logging
import re

import pytest
from django.http import HttpResponse
from django.urls import path, reverse

from config.logs import JSONFormatter, RequestIDFilter, request_id_var
from config.middleware import REQUEST_ID_HEADER

ACCESS_LOGGER = "tasks_api.requests"
view_logger = logging.getLogger("tests.view")


def logging_view(request):
    view_logger.info("inside the view")
    return HttpResponse("ok")


def failing_view(request):
    raise RuntimeError("boom")


urlpatterns = [path("logs", logging_view), path("fail", failing_view)]


def access_records(caplog):
    return [record for record in caplog.records if record.name == ACCESS_LOGGER]


class TestRequestIdHeader:
    def test_generates_an_id_when_none_is_sent(self, client):
        response = client.get(reverse("health-live"))
        assert re.fullmatch(r"[0-9a-f]{32}", response[REQUEST_ID_HEADER])

    def test_each_request_gets_its_own_id(self, client):
        first = client.get(reverse("health-live"))[REQUEST_ID_HEADER]
        second = client.get(reverse("health-live"))[REQUEST_ID_HEADER]
        assert first != second

    @pytest.mark.parametrize("sent", ["abc-123", "trace.ID_42", "a" * 128])
    def test_echoes_a_sane_incoming_id(self, client, sent):
        response = client.get(reverse("health-live"), headers={"X-Request-ID": sent})
        assert response[REQUEST_ID_HEADER] == sent

    @pytest.mark.parametrize(
        "sent", ["", "a" * 129, "has space", "new\\nline", "<script>", "ü", "a,b", "x;y"]
    )
    def test_replaces_an_insane_incoming_id(self, client, sent):
        response = client.get(reverse("health-live"), headers={"X-Request-ID": sent})
        assert response[REQUEST_ID_HEADER] != sent
        assert re.fullmatch(r"[0-9a-f]{32}", response[REQUEST_ID_HEADER])

    def test_errors_carry_the_id_too(self, client):
        response = client.get("/no-such-page", headers={"X-Request-ID": "req-404"})
        assert response.status_code == 404
        assert response[REQUEST_ID_HEADER] == "req-404"


class TestAccessLog:
    def test_one_line_per_request_with_its_fields(self, client, caplog):
        caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
        client.get(reverse("health-live") + "?token=s3cret", headers={"X-Request-ID": "req-1"})
        [record] = access_records(caplog)
        assert record.method == "GET"
        assert record.path == "/health"
        assert record.status == 200
        assert record.duration_ms >= 0
        assert not hasattr(record, "user_id")
        assert record.getMessage().startswith("GET /health 200 ")

    def test_the_request_id_is_on_the_line(self, client, caplog):
        caplog.handler.addFilter(RequestIDFilter())
        caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
        client.get(reverse("health-live"), headers={"X-Request-ID": "req-2"})
        [record] = access_records(caplog)
        assert record.request_id == "req-2"

    def test_never_logs_query_strings_or_credentials(self, client, caplog):
        caplog.handler.addFilter(RequestIDFilter())
        caplog.handler.setFormatter(JSONFormatter())
        caplog.set_level(logging.DEBUG)
        client.get(
            reverse("health-live") + "?access_token=qs-secret",
            headers={
                "Authorization": "Bearer header-secret.jwt.value",
                "Cookie": "better-auth.session_token=cookie-secret",
            },
        )
        logged = caplog.text
        assert access_records(caplog)
        for secret in ("qs-secret", "header-secret", "cookie-secret", "Bearer"):
            assert secret not in logged

    def test_client_errors_log_at_info_level(self, client, caplog):
        caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
        client.get("/no-such-page")
        [record] = access_records(caplog)
        assert (record.status, record.levelno) == (404, logging.INFO)

    @pytest.mark.urls("tests.test_request_id")
    def test_server_errors_log_at_error_level_with_the_id(self, client, caplog):
        client.raise_request_exception = False
        caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
        response = client.get("/fail", headers={"X-Request-ID": "req-500"})
        assert response.status_code == 500
        assert response[REQUEST_ID_HEADER] == "req-500"
        [record] = access_records(caplog)
        assert (record.status, record.levelno) == (500, logging.ERROR)

    def test_logs_the_api_users_id_and_never_their_token(self, jwt_client, user, caplog):
        caplog.handler.setFormatter(JSONFormatter())
        caplog.set_level(logging.DEBUG)
        response = jwt_client.get("/api/tasks")
        assert response.status_code == 200
        [record] = access_records(caplog)
        assert record.user_id == user.pk
        assert record.getMessage().endswith(f"ms user_id={user.pk}")
        token = jwt_client._credentials["HTTP_AUTHORIZATION"].split()[1]
        assert token not in caplog.text
        assert token.split(".")[2] not in caplog.text  # not even the signature

    @pytest.mark.django_db
    def test_rejected_credentials_are_not_logged(self, client, caplog):
        caplog.handler.setFormatter(JSONFormatter())
        caplog.set_level(logging.DEBUG)
        response = client.get("/api/tasks", headers={"Authorization": "Bearer bad.tok-en.value"})
        assert response.status_code == 401
        [record] = access_records(caplog)
        assert not hasattr(record, "user_id")
        assert "bad.tok-en" not in caplog.text

    @pytest.mark.django_db
    def test_logs_staff_separately_from_api_users(self, client, admin_user, caplog):
        client.force_login(admin_user)
        caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
        client.get("/admin/")
        [record] = access_records(caplog)
        assert record.staff_id == str(admin_user.pk)
        assert not hasattr(record, "user_id")

    @pytest.mark.django_db
    def test_never_loads_a_session_user_just_to_log(
        self, client, admin_user, django_assert_num_queries
    ):
        client.force_login(admin_user)
        with django_assert_num_queries(0):
            client.get(reverse("health-live"))


@pytest.mark.urls("tests.test_request_id")
def test_every_log_line_of_a_request_carries_its_id(client, caplog):
    caplog.handler.addFilter(RequestIDFilter())
    caplog.set_level(logging.INFO)
    client.get("/logs", headers={"X-Request-ID": "req-view"})
    [inside] = [record for record in caplog.records if record.name == "tests.view"]
    assert inside.request_id == "req-view"
    assert request_id_var.get() == "-"  # reset once the request is over


def test_json_formatter_writes_one_object_per_line():
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "INFO", "msg": "GET %s", "args": ("/a",), "status": 200}
    )
    record.request_id = "req-3"
    record.request = object()  # Django attaches the request; its repr has the query string
    line = JSONFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "GET /a"
    assert entry["status"] == 200
    assert entry["request_id"] == "req-3"
    assert {"time", "level", "logger"} <= set(entry)
    assert "request" not in entry
