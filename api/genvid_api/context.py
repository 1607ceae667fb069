"""Everything a request or background task needs, opened once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from genvid_api.config import Settings
from genvid_api.db import SessionFactory
from genvid_api.fanout import Hub
from genvid_api.resources import ResourceClient
from genvid_api.signing import UrlSigner
from genvid_api.stream_slots import SlotKeeper


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    nats: NATS
    js: JetStreamContext
    hub: Hub
    slots: SlotKeeper
    kube: ResourceClient
    signer: UrlSigner
