"""Every page of the web app at phone width (no horizontal scroll, no serious or critical
accessibility violation), the app by keyboard alone, and the API's docs with no internet."""

from __future__ import annotations

import re

import asyncpg
import pytest
from playwright.async_api import Page, Route, expect

from support.api import ApiClient
from support.browser import PHONE, OpenPage
from support.jobs import insert_job
from support.pipeline import job_row, submit

pytestmark = pytest.mark.stack


async def test_every_page_fits_a_phone_and_passes_the_accessibility_scan(
    open_page: OpenPage, stack_api: ApiClient
) -> None:
    author = await stack_api.register("pat")
    generation = await submit(
        stack_api, author, "A paper boat on a rainy street", aspect_ratio="9:16"
    )
    assert (await generation.wait_final())["status"] == "SUCCEEDED"
    published = await stack_api.http.post(
        "/videos",
        json={"generation_id": generation.id, "title": "Paper boat", "description": "Rain."},
        headers=author.auth,
    )
    assert published.status_code == 201, published.text
    video_id = published.json()["id"]
    fan = await stack_api.register("fan")
    commented = await stack_api.http.post(
        f"/videos/{video_id}/comments", json={"body": "So calm."}, headers=fan.auth
    )
    assert commented.status_code == 201, commented.text

    web = await open_page(viewport=PHONE)
    pages = {
        "login": "#main h1",
        "signup": "#main h1",
    }
    for route, ready in pages.items():
        await web.open(route)
        await web.page.locator(ready).wait_for()
        assert await web.horizontal_overflow() == 0, route
        assert await web.accessibility_violations() == [], route
        await web.screenshot(route)

    await web.log_in(author)
    signed_in = {
        "feed": f"#feed li[data-id='{video_id}'] video",
        "following": ".pager .empty-note",
        "create": "#remaining-budget",
        "generations": f"#generations li[data-id='{generation.id}'] img",
        f"generations/{generation.id}": "video#preview",
        f"videos/{video_id}": "#comments li",
        f"users/{author.username}": f"#profile-videos li[data-id='{video_id}']",
    }
    for route, ready in signed_in.items():
        await web.open(route)
        await web.page.locator(ready).wait_for()
        assert await web.horizontal_overflow() == 0, route
        assert await web.accessibility_violations() == [], route
        await web.screenshot(route.split("/")[0])


async def test_sign_in_and_find_the_way_by_keyboard_alone(
    open_page: OpenPage, stack_api: ApiClient
) -> None:
    account = await stack_api.register("kim")
    web = await open_page()
    page = web.page
    await web.open("login")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    async def tab_to(selector: str, key: str = "Tab") -> None:
        for _ in range(15):
            await page.keyboard.press(key)
            if await page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    await tab_to("input[name=username]")
    await page.keyboard.type(account.username)
    await tab_to("input[name=password]")
    await page.keyboard.type(account.password)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Feed", exact=True)).to_be_visible()
    await tab_to("a[href='#/create']", "Shift+Tab")  # back from the heading to the menu
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused link shows no focus ring"
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Create a video")).to_be_visible()
    await expect(page.get_by_role("heading", name="Create a video")).to_be_focused()
    await tab_to("textarea[name=prompt]")
    await page.keyboard.type("A kite over a windy beach")
    await expect(page.locator("#prompt-count")).to_have_text(re.compile(r"^25 / \d+ characters$"))
    await web.screenshot("create-by-keyboard")


async def test_the_api_docs_render_their_operations_without_internet(
    open_page: OpenPage, stack_api: ApiClient, web_url: str
) -> None:
    operations = sum(
        len(ops) for ops in (await stack_api.http.get("/openapi.json")).json()["paths"].values()
    )
    web = await open_page()
    left: list[str] = []

    async def offline(route: Route) -> None:
        if route.request.url.startswith(web_url):
            await route.continue_()
        else:
            left.append(route.request.url)
            await route.abort("internetdisconnected")

    # ReDoc's footer shows Redocly's logo from their CDN, and hides it when it cannot load.
    redocly_logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    web.expect_failed_load(redocly_logo)
    page: Page = web.page
    await page.route("**/*", offline)
    await web.open("/docs")
    await expect(page.locator(".swagger-ui .opblock")).to_have_count(operations)
    await expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible()
    await web.screenshot("swagger-ui")
    await web.open("/redoc")
    await expect(page.get_by_role("heading", name="GenVid API", exact=False).first).to_be_visible()
    await expect(page.locator("[data-section-id^='operation/']")).to_have_count(operations)
    await web.screenshot("redoc")
    assert set(left) <= {redocly_logo}, f"the docs asked for something outside GenVid: {left}"


async def test_the_feed_scrolls_on_the_api_cursors_and_my_generations_page_on(
    open_page: OpenPage, stack_api: ApiClient, stack_env: dict[str, str]
) -> None:
    """Twelve published videos of one author, all showing the same real preview: rows written
    as the operator finishes them, pointing at one generation's files."""
    author = await stack_api.register("reel")
    real = await submit(stack_api, author, "Waves on a pebble beach")
    assert (await real.wait_final())["status"] == "SUCCEEDED"
    row = await job_row(stack_env["DATABASE_URL"], real.id)
    files = {key: row[key] for key in ("bucket", "object_name", "poster_object", "size_bytes")}
    db = await asyncpg.connect(stack_env["DATABASE_URL"])
    try:
        copies = [
            await insert_job(
                db,
                author.user_id,
                prompt=f"Waves, take {n}",
                status="SUCCEEDED",
                resource_created=True,
                event_seq=3,
                **files,
            )
            for n in range(11)
        ]
    finally:
        await db.close()
    video_ids = []
    for n, generation_id in enumerate([real.id, *copies]):
        response = await stack_api.http.post(
            "/videos",
            json={"generation_id": generation_id, "title": f"Waves {n}", "description": ""},
            headers=author.auth,
        )
        assert response.status_code == 201, response.text
        video_ids.append(response.json()["id"])

    web = await open_page(viewport=PHONE)  # one card a row: the first page overfills it
    feeds: list[str] = []
    web.page.on("request", lambda r: feeds.append(r.url) if "/feed?" in r.url else None)
    await web.log_in(author)
    page = web.page
    cards = page.locator("#feed li")
    await expect(cards).to_have_count(9)  # the first page, until the user scrolls
    await cards.last.scroll_into_view_if_needed()
    mine = page.locator("#feed li").filter(has=page.get_by_role("link", name=f"@{author.username}"))
    await expect(mine).to_have_count(12)
    shown = await mine.evaluate_all("items => items.map(li => li.dataset.id)")
    assert shown == video_ids[::-1]  # newest first, each once
    assert "cursor=" not in feeds[0] and "cursor=" in feeds[1], feeds

    await web.open("generations")
    items = page.locator("#generations li")
    await expect(items).to_have_count(10)
    await page.get_by_role("button", name="Load more").click()
    await expect(items).to_have_count(12)
    await expect(page.get_by_role("button", name="Load more")).to_be_hidden()
