"""Fixtures of the web tests: headless Chromium (Debian's, driven by Playwright) on the web
app the session stack's api serves, and users of that api."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from support.browser import DESKTOP, SCREENSHOTS, OpenPage, WebPage, ensure_chromium


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    chromium = ensure_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium))
        yield browser
        await browser.close()


@pytest.fixture
def web_url(stack_env: dict[str, str]) -> str:
    return stack_env["GENVID_API_URL"]


@pytest.fixture
async def open_page(
    browser: Browser, web_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[OpenPage]:
    """`await open_page(viewport=...)`: a page in a fresh browser context (its own storage,
    so its own user). At the end each page is photographed and must have logged no error."""
    opened: list[WebPage] = []
    for old in SCREENSHOTS.glob(f"{request.node.name}-*.png"):
        old.unlink()

    async def open_one(viewport: dict[str, int] = DESKTOP, **options: Any) -> WebPage:
        context = await browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(20_000)
        page = await context.new_page()
        web = WebPage(page, web_url, f"{request.node.name}-{len(opened) + 1}")
        opened.append(web)
        return web

    yield open_one
    for web in opened:
        await web.screenshot("end")
        await web.page.context.close()
    errors = [error for web in opened for error in web.errors]
    assert not errors, errors
