"""Headless Chromium (the system's, driven by Playwright) against the live server.

The browser is Debian's `chromium` package (`scripts/install-test-tools.sh`);
Playwright's own browser downloads are not used. Without it the tests are
skipped locally and fail in CI, where a missing browser is a broken set-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install it with scripts/install-test-tools.sh"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the tests' own
    # database calls are synchronous and safe.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`docs/screenshots` with UPDATE_SCREENSHOTS=1, else a temporary directory."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        directory = PROJECT_ROOT / "docs" / "screenshots"
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def staff_login(page: Any, live_server: Any, transactional_db: None) -> Any:
    """Sign a new superuser in through the admin's login form; returns the page."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(
        username="reviewer", email="reviewer@example.com", password=PASSWORD
    )
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
    return page
