"""Swagger UI and Redoc in a real browser: they render, list the task routes, stay offline."""

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from accounts.models import User
from tests.factories import TaskFactory

pytestmark = pytest.mark.browser

TASK_PATHS = ["/api/tasks", "/api/tasks/{id}", "/api/{user_id}/tasks", "/api/{user_id}/tasks/{id}"]


def operation(page, method: str, path: str):
    return page.locator(f".opblock-{method}").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )


def outside_traffic(page, live_server) -> list[str]:
    """URLs the page fetched from anywhere but the live server (a CDN would show up here).

    Requests the page's CSP blocks never reach the network, so they do not count.
    """
    urls: list[str] = []

    def record(url: str) -> None:
        if not url.startswith((live_server.url, "data:", "blob:")):
            urls.append(url)

    page.on("response", lambda response: record(response.url))

    def record_failure(request) -> None:
        if request.failure != "csp":
            record(request.url)

    page.on("requestfailed", record_failure)
    return urls


def test_swagger_ui_renders_and_lists_the_task_routes(page, live_server, screenshot):
    outside = outside_traffic(page, live_server)
    page.goto(f"{live_server.url}/docs")
    page.locator(".opblock").first.wait_for()
    assert (
        page.locator(".information-container .title")
        .inner_text()
        .startswith(settings.SPECTACULAR_SETTINGS["TITLE"])
    )
    for path in TASK_PATHS:
        assert operation(page, "get", path).count() == 1, path
    assert operation(page, "post", "/api/tasks").count() == 1
    assert operation(page, "patch", "/api/tasks/{id}/complete").count() == 1
    screenshot("docs")
    assert outside == []


def test_redoc_renders_offline(page, live_server, screenshot):
    outside = outside_traffic(page, live_server)
    page.goto(f"{live_server.url}/redoc")
    page.get_by_role("heading", name=settings.SPECTACULAR_SETTINGS["TITLE"]).first.wait_for()
    page.get_by_text("/api/tasks").first.wait_for(state="attached")
    screenshot("redoc")
    assert outside == []


def test_swagger_authorize_then_try_it_out_lists_tasks(page, live_server, screenshot):
    email = "swagger-browser@example.com"
    out = io.StringIO()
    with override_settings(DEBUG=True):  # dev_token refuses to run otherwise
        call_command("dev_token", email, stdout=out, stderr=io.StringIO())
    token = out.getvalue().strip()
    user = User.objects.get(email=email)
    TaskFactory(user=user, title="Visible from Swagger")
    try:
        page.goto(f"{live_server.url}/docs")
        page.locator("button.authorize").first.click()
        bearer = page.locator(".auth-container").filter(has_text="bearerAuth")
        bearer.get_by_label("auth-bearer-value").fill(token)
        bearer.get_by_role("button", name="Apply credentials").click()
        bearer.get_by_role("button", name="Close").click()

        list_tasks = operation(page, "get", "/api/tasks")
        list_tasks.locator(".opblock-summary").first.click()
        list_tasks.get_by_role("button", name="Try it out").click()
        with page.expect_response(
            lambda r: r.url.startswith(f"{live_server.url}/api/tasks")
        ) as sent:
            list_tasks.get_by_role("button", name="Execute").click()
        response = sent.value
        assert response.status == 200
        assert response.request.headers["authorization"] == f"Bearer {token}"
        assert [task["title"] for task in response.json()["tasks"]] == ["Visible from Swagger"]
        status = list_tasks.locator(".live-responses-table tr.response .response-col_status")
        assert status.inner_text().strip() == "200"
        screenshot("try-it-out")
    finally:
        user.delete()  # Better Auth's tables are unmanaged: transactional_db does not flush them
