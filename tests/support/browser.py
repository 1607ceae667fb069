"""The browser the web tests drive: Debian's chromium through Playwright, one page at a time.

`WebPage` wraps a Playwright page with what every web test checks: console errors (none,
except the HTTP statuses a test expects, which Chromium logs for any failed fetch), an
accessibility scan with the vendored axe-core, horizontal overflow, and a screenshot.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import ConsoleMessage, Page

from support import REPO
from support.api import Account

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "tests" / "web" / "vendor" / "axe.min.js"
SCREENSHOTS = REPO / "tests" / "web" / "screenshots"
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 860}

_HTTP_STATUS = re.compile(r"the server responded with a status of (\d{3})")


def ensure_chromium() -> Path:
    """Installs Debian's chromium when missing (hack/install-browser.sh, idempotent)."""
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(REPO / "hack" / "install-browser.sh")], check=True)
    return CHROMIUM


@dataclass
class WebPage:
    page: Page
    base_url: str
    name: str
    expected_statuses: set[int] = field(default_factory=set)
    expected_failures: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    shots: int = 0

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = _HTTP_STATUS.search(message.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return
        if message.location.get("url") in self.expected_failures:
            return
        self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def expect_http_errors(self, *statuses: int) -> None:
        """Statuses this test provokes on purpose: Chromium logs each failed fetch."""
        self.expected_statuses.update(statuses)

    def expect_failed_load(self, url: str) -> None:
        """A resource this test keeps from loading on purpose (Chromium logs it)."""
        self.expected_failures.add(url)

    async def open(self, route: str = "") -> None:
        """The app at `#/route` (or the page at an absolute path like `/docs`)."""
        url = f"{self.base_url}{route}" if route.startswith("/") else f"{self.base_url}/#/{route}"
        await self.page.goto(url)

    async def screenshot(self, label: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SCREENSHOTS / f"{self.name}-{self.shots:02d}-{label}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path

    async def accessibility_violations(self) -> list[str]:
        """axe-core's serious and critical violations of the page as it is now."""
        if not await self.page.evaluate("typeof window.axe === 'object'"):
            # Evaluated over the DevTools protocol, which the page's CSP does not govern.
            await self.page.evaluate(AXE.read_text())
        result: dict[str, Any] = await self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']})"
        )
        return [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + json.dumps([node["target"] for node in v["nodes"]][:5])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    async def horizontal_overflow(self) -> int:
        """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
        overflow: int = await self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        return overflow

    async def session(self) -> dict[str, Any]:
        """The tokens the app keeps in localStorage."""
        stored: dict[str, Any] = await self.page.evaluate(
            "JSON.parse(localStorage.getItem('genvid.session'))"
        )
        return stored

    async def log_in(self, account: Account) -> None:
        """Through the login form, as a person would; the app lands on the feed."""
        await self.open("login")
        await self.page.get_by_label("Username or email").fill(account.username)
        await self.page.get_by_label("Password").fill(account.password)
        await self.page.get_by_role("button", name="Log in").click()
        await self.page.get_by_role("heading", name="Feed", exact=True).wait_for()


# The `open_page` fixture: `await open_page(viewport=PHONE)` gives a page of a fresh context.
OpenPage = Callable[..., Awaitable[WebPage]]
