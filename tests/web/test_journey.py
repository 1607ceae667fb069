"""The whole story in a browser, on the session stack with the synthetic generator: sign up,
generate, watch it live, play the preview, publish; another user finds it in the feed, likes
it, comments, follows its author; the author unpublishes it."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from playwright.async_api import expect

from support.api import ApiClient
from support.browser import OpenPage, WebPage
from support.pipeline import submit

pytestmark = pytest.mark.stack

PROMPT = "A red fox running through fresh snow at dawn"
TITLE = "Fox in fresh snow"

# Every entry of the live-updates list, with the phase shown and the moment it arrived.
RECORD_ARRIVALS = """
window.arrivals = [];
new MutationObserver((records) => {
  for (const record of records) for (const node of record.addedNodes) {
    if (node.nodeType === 1 && node.matches('#timeline li')) {
      window.arrivals.push({status: node.dataset.status, at: performance.now(),
        phase: document.querySelector('#phase')?.textContent});
    }
  }
}).observe(document, {childList: true, subtree: true});
"""

PLAY = """async (video) => {
  video.muted = true;
  await video.play();
  await new Promise((done) => {
    const check = () => (video.currentTime > 0.5 ? done() : requestAnimationFrame(check));
    check();
  });
  return {duration: video.duration, readyState: video.readyState, poster: video.poster,
          currentTime: video.currentTime};
}"""


async def as_user(web: WebPage, api: ApiClient, path: str) -> Any:
    """GET `path` with the token the page holds: what the api tells this user."""
    token = (await web.session())["access_token"]
    response = await api.http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_sign_up_generate_watch_play_publish_and_be_liked_commented_followed(
    open_page: OpenPage, stack_api: ApiClient
) -> None:
    author = await open_page()
    page = author.page
    await page.add_init_script(RECORD_ARRIVALS)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)

    # Sign up.
    await author.open("")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await page.get_by_role("link", name="Create an account").click()
    name = f"ada{uuid.uuid4().hex[:8]}"
    await page.get_by_label("Email").fill(f"{name}@example.com")
    await page.get_by_label("Username", exact=True).fill(name)
    await page.get_by_label("Password").fill(f"Correct-Horse-{uuid.uuid4().hex[:6]}")
    assert await author.accessibility_violations() == []
    await author.screenshot("sign-up")
    await page.get_by_role("button", name="Create account").click()

    # Generate: the server's limits, the estimate and the budget before submitting.
    await expect(page.get_by_role("heading", name="Create a video")).to_be_visible()
    config = (await stack_api.http.get("/ui/config.json")).json()
    estimates = next(m for m in config["models"] if m["id"] == config["default_model"])[
        "estimates_usd"
    ]
    limit = config["prompt"]["max_length"]
    counter = page.locator("#prompt-count")
    await expect(counter).to_have_text(f"0 / {limit} characters")
    await page.get_by_label("Prompt", exact=True).fill(PROMPT)
    await expect(counter).to_have_text(f"{len(PROMPT)} / {limit} characters")
    usage = await as_user(author, stack_api, "/me/usage")
    await expect(page.locator("#remaining-budget")).to_have_text(f"${usage['remaining_usd']}")
    await expect(page.locator("#estimated-cost")).to_have_text(f"${estimates['4']}")
    await page.get_by_label("Duration").select_option("8")
    await expect(page.locator("#estimated-cost")).to_have_text(f"${estimates['8']}")
    await page.get_by_label("Duration").select_option("4")
    assert await author.accessibility_violations() == []
    await author.screenshot("create")
    await page.get_by_role("button", name="Generate").click()

    # Watch: the transitions arrive live over the event stream.
    await expect(page.get_by_role("heading", name="Your generation")).to_be_visible()
    generation_id = page.url.rsplit("/", 1)[-1]
    await expect(page.locator("#timeline li").first).to_be_visible()
    await author.screenshot("watching")
    await expect(page.locator("#timeline li[data-status=SUCCEEDED]")).to_be_visible(timeout=120_000)
    arrivals = await page.evaluate("window.arrivals")
    assert [a["status"] for a in arrivals] == ["QUEUED", "RUNNING", "SUCCEEDED"], arrivals
    assert arrivals[1]["phase"] == "Rendering your video…"
    assert arrivals[2]["at"] - arrivals[1]["at"] > 500, "SUCCEEDED came with RUNNING, not live"
    assert any(f"/generations/{generation_id}/events" in url for url in streams), streams
    await expect(page.locator("#phase")).to_have_text("Your video is ready.")

    # Review: the preview plays, with its poster.
    preview = page.locator("video#preview")
    played = await preview.evaluate(PLAY)
    assert abs(played["duration"] - 4) < 0.25, played
    assert played["readyState"] >= 2, played
    assert played["poster"].startswith("http"), played
    await page.evaluate("window.scrollTo(0, 0)")
    await author.screenshot("ready")

    # Publish.
    await page.get_by_label("Title").fill(TITLE)
    await page.get_by_label("Description (optional)").fill("My first GenVid.")
    await page.get_by_role("button", name="Publish").click()
    see_it = page.get_by_role("link", name="See it as others do")
    await expect(see_it).to_be_visible()
    video_id = (await see_it.get_attribute("href") or "").rsplit("/", 1)[-1]
    assert await author.accessibility_violations() == []
    await author.screenshot("published")

    # My generations: status, cost and preview.
    await (
        page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="My generations")
        .click()
    )
    item = page.locator(f"#generations li[data-id='{generation_id}']")
    generation = await as_user(author, stack_api, f"/generations/{generation_id}")
    await expect(item.locator(".badge")).to_have_text("Ready")
    assert Decimal(generation["cost_usd"]) == Decimal(estimates["4"])  # the list price, charged
    await expect(item.locator(".cost")).to_have_text(f"${estimates['4']}")
    await expect(item.locator("img")).to_have_attribute("src", re.compile(r"^https?://"))
    assert await author.accessibility_violations() == []
    await author.screenshot("my-generations")

    # Another user: the public feed, like, comment, follow, the following feed, the profile.
    fan_account = await stack_api.register("fan")
    fan = await open_page()
    await fan.log_in(fan_account)
    card = fan.page.locator(f"#feed li[data-id='{video_id}']")
    await expect(card.get_by_role("heading", name=TITLE)).to_be_visible()
    assert await fan.accessibility_violations() == []
    await fan.screenshot("feed")
    like = card.get_by_role("button", name=re.compile("Like"))
    await like.click()
    await expect(like).to_have_attribute("aria-pressed", "true")
    await expect(like).to_contain_text("1 like")
    await card.get_by_role("link", name="0 comments").click()
    await expect(fan.page.get_by_role("heading", name=TITLE)).to_be_visible()
    await fan.page.get_by_label("Add a comment").fill("Lovely light on the snow!")
    await fan.page.get_by_role("button", name="Post comment").click()
    await expect(fan.page.locator("#comments li .text")).to_have_text(["Lovely light on the snow!"])
    await expect(fan.page.locator("#comment-count")).to_have_text("1 comment")
    await fan.page.get_by_role("button", name=f"Follow @{name}").click()
    following = fan.page.get_by_role("button", name=f"Following @{name}")
    await expect(following).to_have_attribute("aria-pressed", "true")
    assert await fan.accessibility_violations() == []
    await fan.screenshot("video")
    video = await as_user(fan, stack_api, f"/videos/{video_id}")
    assert (video["like_count"], video["comment_count"], video["liked_by_me"]) == (1, 1, True)

    await (
        fan.page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="Following")
        .click()
    )
    await expect(
        fan.page.locator(f"#feed li[data-id='{video_id}']").get_by_role("heading", name=TITLE)
    ).to_be_visible()
    assert await fan.accessibility_violations() == []
    await (
        fan.page.locator(f"#feed li[data-id='{video_id}']")
        .get_by_role("link", name=f"@{name}")
        .click()
    )
    await expect(fan.page.get_by_role("heading", name=f"@{name}")).to_be_visible()
    await expect(fan.page.locator("#follower-count")).to_have_text("1 follower")
    await expect(fan.page.locator(f"#profile-videos li[data-id='{video_id}']")).to_be_visible()
    assert await fan.accessibility_violations() == []
    await fan.screenshot("profile")

    # The author unpublishes it: private again, gone from the feed.
    await author.open(f"videos/{video_id}")
    await author.page.get_by_role("button", name="Unpublish").click()
    await expect(author.page.get_by_role("heading", name="Your generation")).to_be_visible()
    token = (await fan.session())["access_token"]
    gone = await stack_api.http.get(
        f"/videos/{video_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert gone.status_code == 404


# Every text the phase line shows, as it changes.
RECORD_PHASES = """
window.phases = [];
new MutationObserver(() => {
  const text = document.querySelector('#phase')?.textContent;
  if (text && window.phases[window.phases.length - 1] !== text) window.phases.push(text);
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


async def test_a_generation_waiting_for_capacity_shows_its_place_in_line_and_cancels(
    open_page: OpenPage, stack_api: ApiClient
) -> None:
    """Over the per-user cap (two at once by default) the last of six waits its turn."""
    account = await stack_api.register("queue")
    web = await open_page()
    await web.page.add_init_script(RECORD_PHASES)
    await web.log_in(account)
    burst = [await submit(stack_api, account, f"A lantern, take {n}") for n in range(6)]
    await web.open(f"generations/{burst[-1].id}")
    page = web.page
    await expect(page.locator("#phase")).to_have_text(
        re.compile(r"^Waiting for capacity: you are number \d in line\.$")
    )
    await web.screenshot("waiting")
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#timeline li").last).to_have_attribute("data-status", "CANCELED")
    await expect(page.locator("#phase")).to_have_text(re.compile(r"^This generation was canceled"))
    await expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    assert (await burst[-1].get())["status"] == "CANCELED"
    phases = await page.evaluate("window.phases")
    assert any(p.startswith("Waiting for capacity: you are number") for p in phases), phases
    assert await web.accessibility_violations() == []
