"""What the user is told when things do not go their way: a budget or a rate limit refusing a
generation, an access token that expired (refreshed unseen), a session that ended, a log out,
and an event stream that dropped (resumed where it stopped)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest
from playwright.async_api import Request, Route, expect

from support.api import ApiClient
from support.browser import OpenPage
from support.pipeline import submit
from support.polling import eventually

pytestmark = pytest.mark.stack


def set_budget(database_url: str, user: str, usd: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "genvid_api.admin", "budget", "set", user, usd],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_a_submission_over_budget_is_refused_in_a_plain_sentence(
    open_page: OpenPage, stack_api: ApiClient, stack_env: dict[str, str]
) -> None:
    account = await stack_api.register("sam")
    await asyncio.to_thread(set_budget, stack_env["DATABASE_URL"], account.email, "0.10")
    web = await open_page()
    web.expect_http_errors(402)
    await web.log_in(account)
    await web.open("create")
    page = web.page
    await expect(page.locator("#remaining-budget")).to_have_text("$0.10")
    await expect(page.get_by_text("This costs more than your remaining budget.")).to_be_visible()
    await page.get_by_label("Prompt", exact=True).fill("A lighthouse in a storm")
    await page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text(
        re.compile(
            r"^This video would cost \$0\.60, but only \$0\.10 of your \$0\.10 budget is left "
            r"today\. Try a shorter or cheaper video\. It resets in \d+ (hours?|minutes?)\.$"
        )
    )
    assert await web.accessibility_violations() == []
    await web.screenshot("budget-exceeded")
    mine = await stack_api.http.get("/generations", headers=account.auth)
    assert mine.json()["items"] == []


async def test_a_rate_limited_submission_says_how_long_to_wait(
    open_page: OpenPage, stack_api: ApiClient
) -> None:
    """The api's 429 (its body and Retry-After, as documented) is put in the browser's way:
    reaching the real limit would start dozens of generations on the shared stack."""
    account = await stack_api.register("rae")
    web = await open_page()
    web.expect_http_errors(429)

    async def limited(route: Route) -> None:
        await route.fulfill(
            status=429,
            headers={"Retry-After": "42"},
            content_type="application/json",
            body=json.dumps({"detail": "At most 30 generation requests a minute"}),
        )

    await web.page.route("**/generate", limited)
    await web.log_in(account)
    await web.open("create")
    await web.page.get_by_label("Prompt", exact=True).fill("A kite over the dunes")
    await web.page.get_by_role("button", name="Generate").click()
    await expect(web.page.get_by_role("alert")).to_have_text(
        "You have asked for many videos in a short time. Please wait 42 seconds and try again."
    )
    await web.screenshot("rate-limited")


async def test_an_expired_access_token_is_refreshed_unseen_and_an_ended_session_says_so(
    open_page: OpenPage, stack_api: ApiClient
) -> None:
    account = await stack_api.register("lee")
    web = await open_page()
    web.expect_http_errors(401)
    await web.log_in(account)
    page = web.page
    before = await web.session()

    # Refused by the api (as an expired token would be): refreshed, retried, nothing shown.
    await page.evaluate(
        "s => localStorage.setItem('genvid.session', JSON.stringify({...s, access_token: 'x'}))",
        before,
    )
    await web.open("generations")
    await expect(page.get_by_role("heading", name="My generations")).to_be_visible()
    await expect(page.get_by_text("Nothing yet.")).to_be_visible()
    refreshed = await web.session()
    assert refreshed["refresh_token"] != before["refresh_token"]
    assert refreshed["access_token"] not in ("x", before["access_token"])

    # About to expire: refreshed before the request goes out.
    await page.evaluate(
        "s => localStorage.setItem('genvid.session', JSON.stringify({...s, expires_at: 0}))",
        refreshed,
    )
    await web.open("feed")
    await expect(page.get_by_role("heading", name="Feed", exact=True)).to_be_visible()

    async def rotated() -> bool:
        return (await web.session())["refresh_token"] != refreshed["refresh_token"]

    await eventually(rotated, what="the refresh before the feed's request")

    # The refresh token is no longer good (revoked, expired): back to the login page, told why.
    await page.evaluate(
        "s => localStorage.setItem('genvid.session', "
        "JSON.stringify({...s, access_token: 'x', refresh_token: 'y'}))",
        await web.session(),
    )
    await web.open("generations")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_text(
        "Your session has ended. Please log in again."
    )
    assert await web.session() is None
    assert await web.accessibility_violations() == []
    await web.screenshot("session-ended")

    # Logging in again goes back where the user was; logging out forgets the tokens.
    await page.get_by_label("Username or email").fill(account.username)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="My generations")).to_be_visible()
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert await web.session() is None


async def test_a_dropped_event_stream_resumes_after_the_last_event(
    open_page: OpenPage, stack_api: ApiClient
) -> None:
    """The first connection is cut after its first event; the app reconnects with
    Last-Event-ID and gets the rest, nothing missed and nothing twice."""
    account = await stack_api.register("max")
    generation = await submit(stack_api, account, "A hot air balloon at sunrise")
    web = await open_page()
    await web.log_in(account)
    connections: list[Request] = []
    first_id: list[str] = []

    async def cut_the_first(route: Route) -> None:
        connections.append(route.request)
        if len(connections) > 1:
            await route.continue_()
            return
        response = await route.fetch()  # the whole stream: it ends after the final event
        blocks = re.split(r"\r\n\r\n|\n\n", await response.text())
        first_event = next(block for block in blocks if "data:" in block) + "\r\n\r\n"
        first_id.extend(re.findall(r"^id: ?(\d+)\r?$", first_event, re.MULTILINE))
        await route.fulfill(response=response, body=first_event)

    await web.page.route("**/events", cut_the_first)
    await web.open(f"generations/{generation.id}")
    timeline = web.page.locator("#timeline li")
    await expect(timeline.last).to_have_attribute("data-status", "SUCCEEDED", timeout=120_000)
    assert await timeline.evaluate_all("items => items.map(li => li.dataset.status)") == [
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
    ]
    assert len(first_id) == 1
    assert len(connections) == 2
    assert await connections[1].header_value("last-event-id") == first_id[0]
    assert connections[0].headers.get("last-event-id") is None
    await expect(web.page.locator("video#preview")).to_be_visible()
    await web.screenshot("resumed")
