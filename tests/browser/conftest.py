"""Real-browser fixtures: Debian's headless Chromium driven by Playwright against live_server.

No browser is ever downloaded (`playwright install` is not used): the tests run
the system Chromium (`apt-get install -y chromium`; CHROMIUM_PATH to use another)
and skip, saying so, where it is missing. Screenshots land in test-artifacts/browser/.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # runs as root in containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def page(transactional_db, live_server, tmp_path, monkeypatch) -> Iterator:
    """A fresh Chromium profile and page; the live server is at `live_server.url`.

    transactional_db comes first so the test database outlives the live server's thread.
    """
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = _chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium not found: install it with `apt-get install -y chromium` "
            "(scripts/test does when run as root) or set CHROMIUM_PATH."
        )
    # Playwright's sync API keeps an asyncio loop in this thread, which makes Django
    # refuse ORM calls from the test body; the live server runs in its own thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(15_000)
        browser_page = context.pages[0] if context.pages else context.new_page()
        blocked = csp_violations(browser_page)
        try:
            yield browser_page
            # The pages work under their Content-Security-Policy: nothing of theirs is refused.
            assert not blocked, blocked
        finally:
            context.close()
            # While Playwright's loop runs, Django keeps a separate connection for this
            # context: close it, or it outlives the test database.
            connections.close_all()


# Redoc's footer logo is fetched from cdn.redoc.ly: the policy refuses it on purpose
# (config/templates/drf_spectacular/redoc.html).
EXPECTED_REFUSALS = ("cdn.redoc.ly",)


def csp_violations(page) -> list[str]:
    """Console reports of what the page's Content-Security-Policy refused, as they come."""
    refused: list[str] = []

    def record(message) -> None:
        text = message.text
        if "Content Security Policy" in text and not any(x in text for x in EXPECTED_REFUSALS):
            refused.append(text)

    page.on("console", record)
    return refused


@pytest.fixture
def screenshot(page, request):
    """`screenshot("step")` saves test-artifacts/browser/<test>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(step: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{step}.png"
        page.screenshot(path=path)
        return path

    return save
