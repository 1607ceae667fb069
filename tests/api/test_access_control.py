"""The authentication matrix: every route of the app, with no token, an expired token, one
signed with another key, an unsigned (`alg: none`) one, a refresh token, and another user's
valid token. The bad tokens all name the victim (`sub`), so a route that accepted one would act
as the victim; another user's token may do what any user may, and no more.

The routes come from the app itself: a route missing from MATRIX (or PUBLIC) fails
`test_every_route_is_in_the_matrix`, so a new route cannot be forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt
import pytest
from fastapi.routing import iter_route_contexts

from genvid_api.config import Settings
from genvid_api.main import create_app
from support.api import JWT_SECRET, Account, ApiClient, access_claims
from support.social import Social

pytestmark = pytest.mark.stack

SECRET_MARK = f"SECRET-{uuid.uuid4().hex}"


def app_routes() -> list[str]:
    """'METHOD /path' for every route the app serves (HEAD aside, which mirrors GET)."""
    app = create_app(
        Settings.model_validate({"database_url": "postgresql://u:p@db/x", "jwt_secret": "s" * 64})
    )
    found = {
        f"{method} {route.path}"
        for route in iter_route_contexts(app.routes)  # what the OpenAPI builder walks too
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented <= found, documented - found
    return sorted(found)


@dataclass
class World:
    """The victim's things, addressed by the requests, and what must never leak from them."""

    victim: Account
    other: Account
    queued_generation: str  # private, not finished
    unpublished_generation: str  # private, SUCCEEDED, not published
    video: dict[str, Any]  # published
    comment: str  # the victim's, on the victim's video
    webhook: str  # the victim's endpoint
    secrets: list[str] = field(default_factory=list)

    def params(self) -> dict[str, str]:
        return {
            "generation_id": self.queued_generation,
            "video_id": self.video["id"],
            "comment_id": self.comment,
            "username": self.victim.username,
            "webhook_id": self.webhook,
        }


@dataclass(frozen=True)
class Case:
    other: frozenset[int] | None  # what another user's token gets; None: nothing to try
    body: Callable[[World], Any] | None = None
    why: str = ""


def ok(*codes: int, body: Callable[[World], Any] | None = None, why: str = "") -> Case:
    return Case(frozenset(codes), body, why)


MATRIX: dict[str, Case] = {
    # Generations: someone else's are 404, as if they did not exist.
    "POST /generate": ok(202, body=lambda w: {"prompt": "a kite"}, why="makes the caller's own"),
    "GET /generations": ok(200, why="the caller's own list"),
    "GET /generations/{generation_id}": ok(404),
    "POST /generations/{generation_id}/cancel": ok(404),
    "GET /generations/{generation_id}/events": ok(404),
    "GET /events": Case(None, why="the caller's own stream; names nothing of the victim"),
    # Users and follows
    "GET /me": ok(200, why="the caller"),
    "GET /me/usage": ok(200, why="the caller's own budget and queue"),
    "GET /users/{username}": ok(200),
    "GET /users/{username}/videos": ok(200),
    "GET /users/{username}/followers": ok(200),
    "GET /users/{username}/following": ok(200),
    "PUT /users/{username}/follow": ok(200, why="the caller follows the victim"),
    "DELETE /users/{username}/follow": ok(200),
    # Videos: public to read, the owner's to unpublish.
    "POST /videos": ok(
        404,
        body=lambda w: {"generation_id": w.unpublished_generation, "title": "stolen"},
        why="someone else's generation does not exist for the caller",
    ),
    "GET /videos/{video_id}": ok(200),
    "DELETE /videos/{video_id}": ok(403, why="public video, not the caller's"),
    "PUT /videos/{video_id}/like": ok(200, why="the caller's like"),
    "DELETE /videos/{video_id}/like": ok(200),
    "GET /videos/{video_id}/comments": ok(200),
    "POST /videos/{video_id}/comments": ok(201, body=lambda w: {"body": "hello"}),
    "PATCH /videos/{video_id}/comments/{comment_id}": ok(
        403, body=lambda w: {"body": "rewritten"}, why="not the author"
    ),
    "DELETE /videos/{video_id}/comments/{comment_id}": ok(
        403, why="neither the author nor the video's owner"
    ),
    # Webhooks: someone else's endpoints are 404, as if they did not exist.
    "POST /webhooks": ok(
        201, body=lambda w: {"url": "https://hooks.example.com/x"}, why="the caller's own"
    ),
    "GET /webhooks": ok(200, why="the caller's own list"),
    "DELETE /webhooks/{webhook_id}": ok(404),
    "POST /webhooks/{webhook_id}/rotate-secret": ok(404),
    "GET /webhooks/{webhook_id}/deliveries": ok(404),
    # Feeds
    "GET /feed": ok(200),
    "GET /feed/following": ok(200),
    # Sessions: the caller's own.
    "POST /auth/logout-all": Case(None, why="ends the caller's own sessions only"),
    "POST /auth/password": ok(
        422,
        body=lambda w: {"current_password": w.victim.password, "new_password": "x" * 12},
        why="the victim's password is not the caller's",
    ),
}

# Reachable without a token, on purpose.
PUBLIC = {
    "POST /auth/register",
    "POST /auth/token",
    "POST /auth/refresh",
    "POST /auth/logout",
    "GET /healthz",
    "GET /readyz",
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/oauth2-redirect",
    "GET /redoc",
    "GET /",  # the web app's page
    "GET /ui/config.json",  # the web app's models, estimates and limits
}


def test_every_route_is_in_the_matrix() -> None:
    routes = set(app_routes())
    missing = routes - MATRIX.keys() - PUBLIC
    assert not missing, f"routes without an auth case (add them to MATRIX or PUBLIC): {missing}"
    stale = (MATRIX.keys() | PUBLIC) - routes
    assert not stale, f"cases for routes that no longer exist: {stale}"


@pytest.fixture(scope="module")
async def world(api: ApiClient, db: asyncpg.Pool, stack_env: dict[str, str]) -> World:
    social = Social(api=api, db=db, bucket=stack_env["GENVID_BUCKET"])
    victim, other = await api.register("victim"), await api.register("other")
    friend = await api.register("friend")
    queued = await api.generate(victim, prompt=f"{SECRET_MARK} queued")
    assert queued.status_code == 202, queued.text
    unpublished = await social.succeeded_generation(victim, prompt=f"{SECRET_MARK} unpublished")
    video = await social.publish(victim, title="the victim's video")
    await api.http.put(f"/users/{friend.username}/follow", headers=victim.auth)
    await api.http.put(f"/videos/{video['id']}/like", headers=victim.auth)
    comment = await api.http.post(
        f"/videos/{video['id']}/comments", json={"body": "my own words"}, headers=victim.auth
    )
    assert comment.status_code == 201
    webhook = await api.http.post(
        "/webhooks", json={"url": "https://hooks.example.com/victim"}, headers=victim.auth
    )
    assert webhook.status_code == 201, webhook.text
    world = World(
        victim=victim,
        other=other,
        queued_generation=queued.json()["id"],
        unpublished_generation=unpublished,
        video=video,
        comment=comment.json()["id"],
        webhook=webhook.json()["id"],
    )
    world.secrets = [
        SECRET_MARK,
        victim.email,
        world.queued_generation,
        world.unpublished_generation,
        webhook.json()["secret"],
        # Not the published video's generation id: it is in the path of the video's storage
        # objects, so its signed URLs show it; it opens nothing but to its owner.
    ]
    return world


async def everything(db: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a request could change (jobs without the outbox's bookkeeping)."""
    queries = {
        "users": "SELECT id, email, username, hashed_password, is_active FROM users",
        "jobs": "SELECT id, user_id, status, cancel_requested, prompt FROM video_generation_jobs",
        "videos": "SELECT * FROM videos",
        "likes": "SELECT * FROM likes",
        "comments": "SELECT * FROM comments",
        "follows": "SELECT * FROM follows",
        "refresh_tokens": "SELECT jti, revoked_at FROM refresh_tokens",
        "webhooks": "SELECT id, user_id, url, secret, previous_secret, disabled_at "
        "FROM webhook_endpoints",
    }
    return {
        name: sorted(tuple(row) for row in await db.fetch(sql)) for name, sql in queries.items()
    }


async def victims(db: asyncpg.Pool, user_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """The victim's own rows; counters others may move (likes, comments on the video) aside."""
    uid = uuid.UUID(user_id)
    queries = {
        "user": "SELECT id, email, username, hashed_password, is_active FROM users WHERE id = $1",
        "jobs": "SELECT id, status, cancel_requested, prompt FROM video_generation_jobs "
        "WHERE user_id = $1",
        "videos": "SELECT id, generation_id, title, description, published_at FROM videos "
        "WHERE user_id = $1",
        "likes": "SELECT * FROM likes WHERE user_id = $1",
        "comments": "SELECT * FROM comments WHERE author_id = $1",
        "follows": "SELECT * FROM follows WHERE follower_id = $1",
        "refresh_tokens": "SELECT jti, revoked_at FROM refresh_tokens WHERE user_id = $1",
        "webhooks": "SELECT id, url, secret, previous_secret, disabled_at FROM webhook_endpoints "
        "WHERE user_id = $1",
    }
    return {
        name: sorted(tuple(row) for row in await db.fetch(sql, uid))
        for name, sql in queries.items()
    }


def forged_tokens(victim: Account) -> dict[str, str | None]:
    claims = access_claims(victim.user_id, lifetime=600)
    now = claims["iat"]
    return {
        "no token": None,
        "expired": jwt.encode({**claims, "iat": now - 1200, "exp": now - 600}, JWT_SECRET),
        "another key": jwt.encode(claims, "another-secret-" + "y" * 60, algorithm="HS256"),
        "alg none": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        "refresh token": victim.refresh_token,
    }


def request_of(route: str, world: World) -> tuple[str, str, Any]:
    method, template = route.split(" ", 1)
    case = MATRIX[route]
    body = case.body(world) if case.body else None
    return method, template.format(**world.params()), body


@pytest.mark.parametrize("route", sorted(MATRIX))
async def test_bad_tokens_are_401_and_change_nothing(
    api: ApiClient, db: asyncpg.Pool, world: World, route: str
) -> None:
    method, path, body = request_of(route, world)
    before = await everything(db)
    for name, token in forged_tokens(world.victim).items():
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await api.http.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (name, response.status_code, response.text)
        if token is None:
            assert response.json() == {"detail": "Not authenticated"}
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            assert response.json() == {"detail": "Invalid or expired access token"}, name
            assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert await everything(db) == before


@pytest.mark.parametrize("route", sorted(MATRIX))
async def test_another_users_token_reaches_nothing_of_the_victims(
    api: ApiClient, db: asyncpg.Pool, world: World, route: str
) -> None:
    case = MATRIX[route]
    if case.other is None:
        pytest.skip(case.why)
    method, path, body = request_of(route, world)
    before = await victims(db, world.victim.user_id)
    response = await api.http.request(method, path, json=body, headers=world.other.auth)
    assert response.status_code in case.other, (response.status_code, response.text)
    leaked = [secret for secret in world.secrets if secret in response.text]
    assert not leaked, f"{route} showed another user the victim's private {leaked}"
    assert await victims(db, world.victim.user_id) == before
    if response.status_code >= 400:
        assert set(response.json()) == {"detail"}
