"""The Django admin in a real browser: staff sign in, find a task, complete it in bulk."""

import pytest
from django.contrib.auth.models import User as StaffUser

from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.browser

PASSWORD = "a long admin password for tests"


def test_admin_finds_a_task_and_marks_it_complete(page, live_server, screenshot):
    StaffUser.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    owner = UserFactory()
    target = TaskFactory(user=owner, title="Renew the passport", completed=False)
    other = TaskFactory(user=owner, title="Water the plants", completed=False)
    try:
        page.goto(f"{live_server.url}/admin/tasks/task/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        screenshot("login")
        page.get_by_role("button", name="Log in").click()

        page.locator("#searchbar").fill("passport")
        page.locator("#searchbar").press("Enter")
        rows = page.locator("#result_list tbody tr")
        rows.first.wait_for()
        assert rows.count() == 1
        assert "Renew the passport" in rows.first.inner_text()
        assert owner.email in rows.first.inner_text()
        screenshot("search")

        rows.first.locator("input.action-select").check()
        page.locator("select[name=action]").select_option("mark_complete")
        page.get_by_role("button", name="Go").click()
        page.locator(".messagelist .success").wait_for()
        assert "1 task(s) marked complete." in page.locator(".messagelist").inner_text()
        screenshot("completed")

        target.refresh_from_db()
        other.refresh_from_db()
        assert target.completed
        assert target.completed_at is not None
        assert not other.completed
    finally:
        owner.delete()  # Better Auth's tables are unmanaged: transactional_db does not flush them
