"""Fixtures of the browser tests: the running stack, Debian's Chromium through Playwright, logged-in pages.

Playwright's own browser download is not used: `make test` installs Debian's
`chromium`, and the tests are skipped (saying so) when it is missing, as
they are when the clip is. The stack and the browser are module-scoped (one
broker, site agent, console and Chromium for all the tests of a module);
each test gets fresh browser contexts (own cookies) from `log_in`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from tests.browser.stack import PASSWORD, Stack, console_stack

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# What a user would wait for at most on a busy machine (live rows, pages, the status round trip).
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)
LogIn = Callable[..., Page]
NewContext = Callable[..., BrowserContext]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium)")
    return path


@pytest.fixture(scope="module")
def clip(vtest_avi: Path) -> Path:
    if not vtest_avi.is_file():
        pytest.skip(f"the clip {vtest_avi} is missing")
    return vtest_avi


@pytest.fixture(scope="module")
def stack(chromium: str, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with console_stack(tmp_path_factory.mktemp("console-browser"), clip) as running:
        yield running


@pytest.fixture(scope="module")
def browser(stack: Stack, chromium: str) -> Iterator[Browser]:
    """Chromium, closed before the stack stops (so no event stream holds the console open)."""
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[NewContext]:
    """`new_context(**options)`: a fresh browser context (own cookies, 1280x800), closed when the test ends."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(viewport=VIEWPORT, **options)
        context.set_default_timeout(TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def log_in(stack: Stack, new_context: NewContext) -> LogIn:
    """`log_in(user, **context_options)`: a page of a new context, logged in through the login form."""

    def page_of(user: str, **options: Any) -> Page:
        page = new_context(**options).new_page()
        page.goto(stack.url("/login"))
        page.fill("#username", user)
        page.fill("#password", PASSWORD)
        page.click("#login")
        expect(page.locator("#whoami")).to_have_attribute("data-role", stack.users[user])
        return page

    return page_of
