"""The signed-in user."""

from __future__ import annotations

from fastapi import APIRouter

from genvid_api.deps import CurrentUser
from genvid_api.models import UserPublic

router = APIRouter(tags=["users"])


@router.get("/me", response_model=UserPublic, responses={401: {"description": "Not signed in"}})
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)
