"""Publishing, the feeds, likes, comments, follows and profiles, against the real stack.

This module has a database of its own (migrated like a deployment), so the public feed holds
exactly the videos these tests published and can be compared with the table as a whole.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from genvid_api.queries import videos
from genvid_devstack import apps
from support.api import ApiClient, in_process_api, make_settings
from support.database import scratch_database
from support.social import Social

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def feed_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    async with scratch_database(stack_env, "genvid_feed") as url:
        await asyncio.to_thread(apps.migrate, {"DATABASE_URL": url})
        yield url


@pytest.fixture(scope="module")
async def client(
    stack_env: dict[str, str], feed_database: str, api_namespace: str
) -> AsyncIterator[ApiClient]:
    # No outbox loop: its queries would share the engine whose statements a test counts.
    settings = make_settings(stack_env, feed_database, api_namespace, GENVID_OUTBOX_ENABLED="false")
    async with in_process_api(settings) as api:
        yield api


@pytest.fixture(scope="module")
async def pool(feed_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(feed_database, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def social(client: ApiClient, pool: asyncpg.Pool, stack_env: dict[str, str]) -> Social:
    return Social(api=client, db=pool, bucket=stack_env["GENVID_BUCKET"])


def sort_key(item: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
    return datetime.fromisoformat(item["published_at"]), uuid.UUID(item["id"])


async def all_video_ids(pool: asyncpg.Pool) -> set[str]:
    return {str(row["id"]) for row in await pool.fetch("SELECT id FROM videos")}


# ---------------------------------------------------------------------------------------------
# Publishing


async def test_publishing_needs_my_own_succeeded_generation(
    client: ApiClient, social: Social, pool: asyncpg.Pool
) -> None:
    owner, other = await social.account("owner"), await social.account("other")
    queued = (await client.generate(owner)).json()["id"]
    body = {"title": "Fox", "description": "in snow"}

    response = await client.http.post(
        "/videos", json={**body, "generation_id": queued}, headers=owner.auth
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Generation is QUEUED: only a SUCCEEDED generation can be published"
    }

    generation = await social.succeeded_generation(owner)
    for who, generation_id in ((other, generation), (owner, str(uuid.uuid4()))):
        response = await client.http.post(
            "/videos", json={**body, "generation_id": generation_id}, headers=who.auth
        )
        assert response.status_code == 404
        assert response.json() == {"detail": "Generation not found"}

    response = await client.http.post(
        "/videos", json={**body, "generation_id": generation}, headers=owner.auth
    )
    assert response.status_code == 201, response.text
    video = response.json()
    assert response.headers["location"] == f"/videos/{video['id']}"
    assert video["author"] == {"id": owner.user_id, "username": owner.username}
    assert (video["title"], video["description"]) == ("Fox", "in snow")
    assert (video["like_count"], video["comment_count"], video["liked_by_me"]) == (0, 0, False)
    assert video["generation_id"] == generation  # the owner sees it ...
    assert video["video_url"].split("?")[0].endswith(f"previews/{generation}/preview.mp4")
    assert "X-Goog-Signature=" in video["poster_url"]
    assert video["urls_expire_at"] is not None
    seen = (await client.http.get(f"/videos/{video['id']}", headers=other.auth)).json()
    assert seen["generation_id"] is None  # ... nobody else does
    assert "lighthouse" not in str(seen)  # nor the prompt

    again = await client.http.post(
        "/videos", json={**body, "generation_id": generation}, headers=owner.auth
    )
    assert again.status_code == 409
    assert again.json() == {"detail": "Generation is already published"}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM videos WHERE generation_id = $1", uuid.UUID(generation)
        )
        == 1
    )


async def test_publishing_twice_at_once_makes_one_video(client: ApiClient, social: Social) -> None:
    owner = await social.account("racer")
    generation = await social.succeeded_generation(owner)
    responses = await asyncio.gather(
        *(
            client.http.post(
                "/videos", json={"generation_id": generation, "title": "t"}, headers=owner.auth
            )
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 121}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"description": "d" * 2001}, "description"),
        ({"description": "nul\x00"}, "description"),
        ({"generation_id": "not-a-uuid"}, "generation_id"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_invalid_publish_is_422_naming_the_field(
    client: ApiClient, social: Social, change: dict[str, Any], field: str
) -> None:
    owner = await social.account("bad")
    generation = await social.succeeded_generation(owner)
    body = {"generation_id": generation, "title": "ok", "description": "", **change}
    response = await client.http.post("/videos", json=body, headers=owner.auth)
    assert response.status_code == 422, response.text
    assert any(error["loc"][-1] == field for error in response.json()["detail"])


# ---------------------------------------------------------------------------------------------
# Feeds


async def test_public_feed_is_every_published_video_newest_first_and_no_private_one(
    client: ApiClient, social: Social, pool: asyncpg.Pool
) -> None:
    author, reader = await social.account("author"), await social.account("reader")
    private = await social.succeeded_generation(author, prompt="SECRET-PROMPT never shown")
    mine = [await social.publish(author, title=f"clip {n}") for n in range(5)]

    feed = await social.pages(reader, "/feed", limit=3)
    assert {item["id"] for item in feed} == await all_video_ids(pool)
    assert [sort_key(item) for item in feed] == sorted(map(sort_key, feed), reverse=True)
    ours = [item["id"] for item in feed if item["author"]["id"] == author.user_id]
    assert ours == [video["id"] for video in reversed(mine)]
    text = str(feed)
    assert private not in text and "SECRET-PROMPT" not in text and author.email not in text


async def test_pages_have_no_duplicates_or_gaps_while_videos_are_published(
    client: ApiClient, social: Social, pool: asyncpg.Pool
) -> None:
    authors = [await social.account("busy") for _ in range(3)]
    reader = await social.account("pager")
    for n in range(12):
        await social.publish(authors[n % 3])
    before = await all_video_ids(pool)

    seen: list[dict[str, Any]] = []
    published_meanwhile: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        # Fetch a page while two more videos are published concurrently.
        page, *new = await asyncio.gather(
            client.http.get("/feed", params=params, headers=reader.auth),
            social.publish(authors[0]),
            social.publish(authors[1]),
        )
        published_meanwhile.extend(video["id"] for video in new)
        assert page.status_code == 200
        body = page.json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "a video appeared on two pages"
    assert before <= set(ids), "a video that existed all along was skipped"
    assert [sort_key(item) for item in seen] == sorted(map(sort_key, seen), reverse=True)
    # New videos go on top: after the first page none of them can show up.
    first_page = {item["id"] for item in seen[:4]}
    assert not (set(ids) - first_page) & set(published_meanwhile)
    top = (await client.http.get("/feed", params={"limit": 2}, headers=reader.auth)).json()
    assert {item["id"] for item in top["items"]} <= set(published_meanwhile)


async def test_following_feed_has_only_the_people_i_follow(
    client: ApiClient, social: Social
) -> None:
    me, followed, also, stranger = [await social.account(p) for p in ("me", "b", "c", "d")]
    for who in (followed, also):
        response = await client.http.put(f"/users/{who.username}/follow", headers=me.auth)
        assert response.status_code == 200
    expected = []
    for n in range(7):
        expected.append((await social.publish((followed, also, stranger, me)[n % 4]))["id"])

    feed = await social.pages(me, "/feed/following", limit=2)
    authors = {item["author"]["id"] for item in feed}
    assert authors == {followed.user_id, also.user_id}
    want = [vid for n, vid in enumerate(expected) if n % 4 in (0, 1)]
    assert [item["id"] for item in feed] == list(reversed(want))

    await client.http.delete(f"/users/{also.username}/follow", headers=me.auth)
    feed = await social.pages(me, "/feed/following")
    assert {item["author"]["id"] for item in feed} == {followed.user_id}
    # Following nobody: an empty feed, not an error.
    nobody = await social.account("lonely")
    empty = await client.http.get("/feed/following", headers=nobody.auth)
    assert empty.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("window", [1, 3, 10_000])
async def test_both_following_feed_strategies_give_the_same_pages(
    client: ApiClient, social: Social, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """The feed looks through the newest `window` videos first and asks each followee only if
    that is not a full page: whichever way a page is found, it is the same."""
    me = await social.account("strategist")
    followed = [await social.account("f") for _ in range(3)]
    noise = await social.account("noise")
    for who in followed:
        await client.http.put(f"/users/{who.username}/follow", headers=me.auth)
    expected = []
    for n in range(9):
        await social.publish(noise)
        expected.append((await social.publish(followed[n % 3]))["id"])
    await social.publish(noise)
    monkeypatch.setattr(videos, "FOLLOWING_WINDOW", window)
    feed = await social.pages(me, "/feed/following", limit=2)
    assert [item["id"] for item in feed] == list(reversed(expected))


async def test_a_page_is_a_constant_number_of_queries_and_one_signer_call(
    client: ApiClient, social: Social
) -> None:
    """Authors, counts, liked-by-me and storage names come in the page query; signing is one
    batch; nothing is done per item."""
    reader = await social.account("counter")
    author = await social.account("prolific")
    await client.http.put(f"/users/{author.username}/follow", headers=reader.auth)
    for _ in range(6):
        video = await social.publish(author)
        await client.http.put(f"/videos/{video['id']}/like", headers=reader.auth)

    ctx = client.app.state.ctx
    statements: list[str] = []
    calls: list[int] = []
    real_signer = ctx.signer

    class CountingSigner:
        async def sign(self, bucket: str, name: str) -> Any:
            raise AssertionError("signed one URL at a time")

        async def sign_many(self, objects: list[tuple[str, str]]) -> Any:
            calls.append(len(objects))
            return await real_signer.sign_many(objects)

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(ctx.engine.sync_engine, "before_cursor_execute", record)
    ctx.signer = CountingSigner()
    try:
        counts = {}
        for path in ("/feed", "/feed/following", f"/users/{author.username}/videos"):
            for limit in (1, 6):
                statements.clear()
                calls.clear()
                response = await client.http.get(path, params={"limit": limit}, headers=reader.auth)
                assert response.status_code == 200
                items = response.json()["items"]
                assert len(items) == limit and all(item["liked_by_me"] for item in items)
                assert calls == [2 * limit]
                counts[(path, limit)] = len(statements)
    finally:
        ctx.signer = real_signer
        sa.event.remove(ctx.engine.sync_engine, "before_cursor_execute", record)
    for path in ("/feed", "/feed/following"):
        assert counts[(path, 1)] == counts[(path, 6)] <= 3, counts  # user, page, (commit)


# ---------------------------------------------------------------------------------------------
# Likes and comments: counters


async def test_counts_stay_right_under_concurrent_likes_and_unlikes_from_many_users(
    client: ApiClient, social: Social, pool: asyncpg.Pool
) -> None:
    owner = await social.account("star")
    video = await social.publish(owner)
    path = f"/videos/{video['id']}/like"
    fans = await asyncio.gather(*(social.account("fan") for _ in range(40)))

    # Everyone likes at once, a third of them twice (idempotent).
    likes = [client.http.put(path, headers=fan.auth) for fan in fans]
    likes += [client.http.put(path, headers=fan.auth) for fan in fans[::3]]
    responses = await asyncio.gather(*likes)
    assert all(r.status_code == 200 and r.json()["liked"] for r in responses)

    # Half of them unlike at once, some twice, while others keep liking again.
    leaving = fans[:20]
    changes = [client.http.delete(path, headers=fan.auth) for fan in leaving]
    changes += [client.http.delete(path, headers=fan.auth) for fan in leaving[::4]]
    changes += [client.http.put(path, headers=fan.auth) for fan in fans[20:30]]
    responses = await asyncio.gather(*changes)
    assert all(r.status_code == 200 for r in responses)

    stored = await pool.fetchrow(
        "SELECT like_count, (SELECT count(*) FROM likes WHERE video_id = $1) AS actual "
        "FROM videos WHERE id = $1",
        uuid.UUID(video["id"]),
    )
    assert (stored["like_count"], stored["actual"]) == (20, 20)
    state = await client.http.put(path, headers=fans[-1].auth)
    assert state.json() == {"video_id": video["id"], "liked": True, "like_count": 20}

    for fan, liked in ((fans[0], False), (fans[-1], True)):
        page = await social.pages(fan, f"/users/{owner.username}/videos")
        assert (page[0]["like_count"], page[0]["liked_by_me"]) == (20, liked)
    unknown = await client.http.put(f"/videos/{uuid.uuid4()}/like", headers=fans[0].auth)
    assert unknown.status_code == 404


async def test_comment_count_follows_comments_created_and_deleted(
    client: ApiClient, social: Social
) -> None:
    owner = await social.account("talked")
    video = await social.publish(owner)
    path = f"/videos/{video['id']}/comments"
    talkers = await asyncio.gather(*(social.account("talker") for _ in range(10)))
    created = await asyncio.gather(
        *(client.http.post(path, json={"body": f"hi {n}"}, headers=t.auth) for n, t in
          enumerate(talkers))
    )  # fmt: skip
    assert all(r.status_code == 201 for r in created)
    for response, talker in list(zip(created, talkers, strict=True))[:4]:
        deleted = await client.http.delete(f"{path}/{response.json()['id']}", headers=talker.auth)
        assert deleted.status_code == 204
    seen = (await client.http.get(f"/videos/{video['id']}", headers=owner.auth)).json()
    assert seen["comment_count"] == 6
    assert len(await social.pages(owner, path, limit=4)) == 6


# ---------------------------------------------------------------------------------------------
# Unpublishing


async def test_an_unpublished_video_vanishes_at_once_and_its_generation_stays(
    client: ApiClient, social: Social, pool: asyncpg.Pool
) -> None:
    owner, fan = await social.account("quitter"), await social.account("fan")
    await client.http.put(f"/users/{owner.username}/follow", headers=fan.auth)
    video = await social.publish(owner)
    vid = video["id"]
    await client.http.put(f"/videos/{vid}/like", headers=fan.auth)
    comment = await client.http.post(
        f"/videos/{vid}/comments", json={"body": "nice"}, headers=fan.auth
    )
    assert comment.status_code == 201

    forbidden = await client.http.delete(f"/videos/{vid}", headers=fan.auth)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "Only the owner can unpublish"}

    assert (await client.http.delete(f"/videos/{vid}", headers=owner.auth)).status_code == 204
    for path in ("/feed", "/feed/following", f"/users/{owner.username}/videos"):
        assert vid not in {item["id"] for item in await social.pages(fan, path)}, path
    for method, path in (
        ("GET", f"/videos/{vid}"),
        ("PUT", f"/videos/{vid}/like"),
        ("GET", f"/videos/{vid}/comments"),
        ("POST", f"/videos/{vid}/comments"),
        ("DELETE", f"/videos/{vid}/comments/{comment.json()['id']}"),
        ("DELETE", f"/videos/{vid}"),
    ):
        body = {"body": "late"} if method == "POST" else None
        response = await client.http.request(method, path, json=body, headers=owner.auth)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Video not found"}
    assert (
        await pool.fetchval("SELECT count(*) FROM likes WHERE video_id = $1", uuid.UUID(vid)) == 0
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM comments WHERE video_id = $1", uuid.UUID(vid))
        == 0
    )
    profile = (await client.http.get(f"/users/{owner.username}", headers=fan.auth)).json()
    assert profile["video_count"] == 0

    # The generation is private again, still the owner's, and can be published anew.
    generation = video["generation_id"]
    mine = await client.http.get(f"/generations/{generation}", headers=owner.auth)
    assert mine.status_code == 200 and mine.json()["status"] == "SUCCEEDED"
    assert (
        await client.http.get(f"/generations/{generation}", headers=fan.auth)
    ).status_code == 404
    again = await client.http.post(
        "/videos", json={"generation_id": generation, "title": "back"}, headers=owner.auth
    )
    assert again.status_code == 201
    assert again.json()["id"] != vid and again.json()["like_count"] == 0


# ---------------------------------------------------------------------------------------------
# Comments: who may do what


async def test_comment_permissions(client: ApiClient, social: Social) -> None:
    owner, author, bystander = [await social.account(p) for p in ("owner", "author", "by")]
    video = await social.publish(owner)
    path = f"/videos/{video['id']}/comments"
    created = await client.http.post(path, json={"body": "first!"}, headers=author.auth)
    assert created.status_code == 201
    comment = created.json()
    assert comment["author"] == {"id": author.user_id, "username": author.username}
    assert comment["edited_at"] is None
    one = f"{path}/{comment['id']}"

    for who in (owner, bystander):
        response = await client.http.patch(one, json={"body": "hijacked"}, headers=who.auth)
        assert response.status_code == 403
        assert response.json() == {"detail": "Only the author can edit a comment"}
    edited = await client.http.patch(one, json={"body": "first, edited"}, headers=author.auth)
    assert edited.status_code == 200
    assert edited.json()["body"] == "first, edited" and edited.json()["edited_at"] is not None

    response = await client.http.delete(one, headers=bystander.auth)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Only the author or the video's owner can delete a comment"
    }
    # The comment exists only under its own video.
    elsewhere = await social.publish(bystander)
    response = await client.http.delete(
        f"/videos/{elsewhere['id']}/comments/{comment['id']}", headers=bystander.auth
    )
    assert response.status_code == 404 and response.json() == {"detail": "Comment not found"}
    assert (await client.http.delete(one, headers=owner.auth)).status_code == 204  # moderation
    assert (await client.http.delete(one, headers=author.auth)).status_code == 404

    own = (await client.http.post(path, json={"body": "mine"}, headers=bystander.auth)).json()
    assert (
        await client.http.delete(f"{path}/{own['id']}", headers=bystander.auth)
    ).status_code == 204


async def test_comments_are_oldest_first_and_validated(client: ApiClient, social: Social) -> None:
    owner = await social.account("chatty")
    video = await social.publish(owner)
    path = f"/videos/{video['id']}/comments"
    for n in range(5):
        response = await client.http.post(path, json={"body": f"c{n}"}, headers=owner.auth)
        assert response.status_code == 201
    assert [c["body"] for c in await social.pages(owner, path, limit=2)] == [
        f"c{n}" for n in range(5)
    ]
    for body in ({"body": ""}, {"body": "  \n"}, {"body": "x" * 2001}, {"body": "a", "x": 1}):
        response = await client.http.post(path, json=body, headers=owner.auth)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"][0] == "body"


# ---------------------------------------------------------------------------------------------
# Follows and profiles


async def test_follow_rules(client: ApiClient, social: Social, pool: asyncpg.Pool) -> None:
    me, them = await social.account("me"), await social.account("them")
    path = f"/users/{them.username}/follow"

    for method in ("PUT", "DELETE"):
        response = await client.http.request(
            method, f"/users/{me.username}/follow", headers=me.auth
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "self_follow"
    with pytest.raises(asyncpg.CheckViolationError):  # and the database refuses it too
        await pool.execute("INSERT INTO follows VALUES ($1, $1)", uuid.UUID(me.user_id))

    for _ in range(2):  # idempotent
        response = await client.http.put(path, headers=me.auth)
        assert response.status_code == 200
        assert response.json() == {
            "username": them.username, "following": True, "follower_count": 1
        }  # fmt: skip
    upper = await client.http.put(f"/users/{them.username.upper()}/follow", headers=me.auth)
    assert upper.json()["follower_count"] == 1  # usernames are case-insensitive
    for _ in range(2):
        response = await client.http.delete(path, headers=me.auth)
        assert response.json() == {
            "username": them.username, "following": False, "follower_count": 0
        }  # fmt: skip

    missing = await client.http.put("/users/nobody-here-at-all/follow", headers=me.auth)
    assert missing.status_code == 404 and missing.json() == {"detail": "User not found"}
    malformed = await client.http.put("/users/no%20spaces/follow", headers=me.auth)
    assert malformed.status_code == 422


async def test_follower_lists_and_profiles(client: ApiClient, social: Social) -> None:
    celebrity = await social.account("celeb")
    fans = [await social.account("fan") for _ in range(5)]
    for fan in fans:
        assert (
            await client.http.put(f"/users/{celebrity.username}/follow", headers=fan.auth)
        ).status_code == 200
    await client.http.put(f"/users/{fans[0].username}/follow", headers=celebrity.auth)
    videos = [await social.publish(celebrity) for _ in range(3)]

    followers = await social.pages(fans[1], f"/users/{celebrity.username}/followers", limit=2)
    assert [f["username"] for f in followers] == [fan.username for fan in reversed(fans)]
    following = await social.pages(celebrity, f"/users/{celebrity.username}/following")
    assert [f["id"] for f in following] == [fans[0].user_id]

    profile = (await client.http.get(f"/users/{celebrity.username}", headers=fans[0].auth)).json()
    assert profile["id"] == celebrity.user_id
    assert (profile["follower_count"], profile["following_count"], profile["video_count"]) == (
        5, 1, 3,
    )  # fmt: skip
    assert profile["followed_by_me"] is True
    assert [v["id"] for v in profile["videos"]["items"]] == [v["id"] for v in reversed(videos)]
    assert "email" not in profile and celebrity.email not in str(profile)
    stranger = await social.account("stranger")
    seen = (await client.http.get(f"/users/{celebrity.username}", headers=stranger.auth)).json()
    assert seen["followed_by_me"] is False
    assert (
        await client.http.get("/users/nobody-here-at-all", headers=stranger.auth)
    ).status_code == 404

    me = (await client.http.get("/me", headers=celebrity.auth)).json()
    assert me["email"] == celebrity.email
    assert (me["follower_count"], me["following_count"], me["video_count"]) == (5, 1, 3)


@pytest.mark.parametrize(
    "path",
    [
        "/feed",
        "/feed/following",
        "/users/{username}/videos",
        "/users/{username}/followers",
        "/users/{username}/following",
        "/videos/{video}/comments",
    ],
)
@pytest.mark.parametrize("cursor", ["garbage!", "bm90LWEtY3Vyc29y", "", "x" * 201])
async def test_a_malformed_cursor_is_422(
    client: ApiClient, social: Social, path: str, cursor: str
) -> None:
    account = await social.account("cursor")
    video = await social.publish(account)
    url = path.format(username=account.username, video=video["id"])
    response = await client.http.get(url, params={"cursor": cursor}, headers=account.auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]
