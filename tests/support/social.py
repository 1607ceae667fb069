"""Videos to publish: generations finished as the operator finishes them, then published."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from genvid_api.security import create_access_token
from support.api import Account, ApiClient
from support.jobs import insert_job


@dataclass
class Social:
    """Publishing on top of an ApiClient: SUCCEEDED generations are written into the database
    as the operator writes them (status, bucket, object names), then published via the api."""

    api: ApiClient
    db: asyncpg.Pool
    bucket: str

    async def succeeded_generation(self, account: Account, prompt: str | None = None) -> str:
        """A job row as POST /generate leaves it, finished as the operator finishes it (no
        custom resource: `resource_created` is true, so no outbox touches it)."""
        job_id = uuid.uuid4()
        now = datetime.now(UTC)
        return await insert_job(
            self.db, account.user_id, id=job_id, prompt=prompt or f"a lighthouse {job_id.hex[:6]}",
            status="SUCCEEDED", resource_created=True, event_seq=4, bucket=self.bucket,
            object_name=f"previews/{job_id}/preview.mp4",
            poster_object=f"previews/{job_id}/poster.jpg", size_bytes=1024,
            cost_usd=Decimal("0.4"), started_at=now, finished_at=now,
        )  # fmt: skip

    async def publish(
        self, account: Account, title: str | None = None, description: str = ""
    ) -> dict[str, Any]:
        """A new SUCCEEDED generation of `account`, published; the video as the api returns it."""
        generation_id = await self.succeeded_generation(account)
        response = await self.api.http.post(
            "/videos",
            json={
                "generation_id": generation_id,
                "title": title or f"video {generation_id[:8]}",
                "description": description,
            },
            headers=account.auth,
        )
        assert response.status_code == 201, response.text
        video: dict[str, Any] = response.json()
        return video

    async def pages(
        self, account: Account, path: str, limit: int = 20, **params: str
    ) -> list[dict[str, Any]]:
        """Every item of a paginated listing, following next_cursor to the end."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query: dict[str, str | int] = {"limit": limit, **params}
            if cursor:
                query["cursor"] = cursor
            response = await self.api.http.get(path, params=query, headers=account.auth)
            assert response.status_code == 200, response.text
            body = response.json()
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    async def account(self, prefix: str = "fan") -> Account:
        """A user written straight into the database with an access token minted for it: many
        users fast (registering hashes a password with argon2 each time)."""
        user_id = uuid.uuid4()
        name = f"{prefix}{user_id.hex[:10]}"
        await self.db.execute(
            "INSERT INTO users (id, email, username, hashed_password) VALUES ($1, $2, $3, 'x')",
            user_id, f"{name}@example.com", name,
        )  # fmt: skip
        token = create_access_token(self.api.app.state.settings, user_id).token
        return Account(
            user_id=str(user_id),
            username=name,
            email=f"{name}@example.com",
            password="",
            access_token=token,
            refresh_token="",
        )
