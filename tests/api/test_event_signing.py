"""Signed URLs in events name only the caller's own objects, whatever a NATS message claims.

Anyone who can publish on NATS can put any storage name into a transition; the api signs only
what the caller's own generation row names, or objects under that generation's own
`previews/<id>/` prefix, in its bucket.
"""

from __future__ import annotations

import asyncpg
import pytest
from nats.js import JetStreamContext

from support.api import Account, ApiClient
from support.job_stream import publish_transition
from support.social import Social
from support.sse import SseEvent, sse

pytestmark = pytest.mark.stack


async def _succeeded_event(
    api: ApiClient, js: JetStreamContext, attacker: Account, **claims: str
) -> SseEvent:
    """A forged SUCCEEDED transition of one of the attacker's own generations, as the
    attacker's event stream delivers it (`{own}` in a claim: that generation's id)."""
    response = await api.generate(attacker)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    claimed = {key: value.format(own=job_id) for key, value in claims.items()}
    await publish_transition(js, attacker.user_id, job_id, "QUEUED", 1)
    await publish_transition(js, attacker.user_id, job_id, "SUCCEEDED", 2, **claimed)
    async with sse(api.http, f"/generations/{job_id}/events", attacker.auth) as stream:
        events = await stream.events(2)
        await stream.wait_end()
    assert [event.data["status"] for event in events] == ["QUEUED", "SUCCEEDED"]
    return events[-1]


@pytest.fixture
async def victim_objects(
    api: ApiClient, db: asyncpg.Pool, stack_env: dict[str, str]
) -> tuple[str, str, str]:
    """A private SUCCEEDED generation of another user: its id, preview and poster."""
    social = Social(api=api, db=db, bucket=stack_env["GENVID_BUCKET"])
    victim = await api.register("victim")
    job_id = await social.succeeded_generation(victim, prompt="private")
    return job_id, f"previews/{job_id}/preview.mp4", f"previews/{job_id}/poster.jpg"


async def test_an_event_naming_another_users_object_gets_no_url(
    api: ApiClient,
    js: JetStreamContext,
    stack_env: dict[str, str],
    victim_objects: tuple[str, str, str],
) -> None:
    victim_job, video, poster = victim_objects
    attacker = await api.register("attacker")
    bucket = stack_env["GENVID_BUCKET"]
    forged = [
        {"object_name": video, "poster_object": poster},
        {"object_name": video, "poster_object": poster, "bucket": bucket},
        {"object_name": "previews/{own}/../" + video.removeprefix("previews/")},
        # The message claims to be about the victim's generation, on the attacker's subject.
        {"id": victim_job, "object_name": video, "poster_object": poster},
    ]
    for claims in forged:
        event = await _succeeded_event(api, js, attacker, **claims)
        assert event.data.get("video_url") is None, claims
        assert event.data.get("poster_url") is None, claims


async def test_an_event_naming_the_callers_own_objects_is_signed(
    api: ApiClient, js: JetStreamContext, stack_env: dict[str, str]
) -> None:
    """The control: the operator's own message (objects under the generation's prefix, in the
    bucket) still gets its URLs; another bucket does not."""
    owner = await api.register("owner")
    bucket = stack_env["GENVID_BUCKET"]
    event = await _succeeded_event(
        api, js, owner, object_name="previews/{own}/p.mp4", poster_object="previews/{own}/p.jpg"
    )
    own_id = event.data["id"]
    assert event.data["video_url"].split("?")[0].endswith(f"/{bucket}/previews/{own_id}/p.mp4")
    assert "X-Goog-Signature=" in event.data["poster_url"]
    elsewhere = await _succeeded_event(
        api, js, owner, object_name="previews/{own}/p.mp4", bucket="someone-elses-bucket"
    )
    assert elsewhere.data.get("video_url") is None
