"""Users for the load benchmarks, registered through the api like anyone else."""

from __future__ import annotations

import uuid

import httpx

# The Authorization header of one user.
Auth = dict[str, str]


async def register(http: httpx.AsyncClient, prefix: str) -> Auth:
    """A new user's Authorization header (the api must run with GENVID_RATE_LIMITS=off)."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    password = f"Correct-Horse-{uuid.uuid4().hex[:8]}"
    registered = await http.post(
        "/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": password},
    )
    registered.raise_for_status()
    tokens = await http.post("/auth/token", data={"username": name, "password": password})
    tokens.raise_for_status()
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}
