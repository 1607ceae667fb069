"""Webhooks' rules, as pure functions: secrets and signatures, which URLs and addresses an
endpoint may have, what a transition's message says, and when a failed attempt is retried.

Signatures follow the Standard Webhooks specification (the scheme Svix and others use), so a
receiver verifies them with any of its libraries: `webhook-id` (the message id, the same on
every attempt: receivers deduplicate on it), `webhook-timestamp` (Unix seconds of the attempt)
and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the
bytes the secret's base64 encodes. For a grace period after a rotation the header carries a
signature by the new secret and one by the previous, separated by a space (the specification
allows several): a receiver accepts the message if any of them is its secret's.

The address rules exist because the api makes requests to URLs its users choose: without them
a user could have it call the cluster's own services or the cloud's metadata server. They are
checked when a URL is registered (what can be told without DNS) and again on every connection
(genvid_api.webhook_delivery), against the addresses the name resolves to then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from genvid_api.errors import Invalid
from genvid_api.views import EVENT_FIELDS
from genvid_contracts.events import msg_id

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# Jitter: each retry waits its delay times a random factor in [1 - JITTER, 1 + JITTER].
JITTER = 0.2
# Names that always mean this machine, refused without asking DNS.
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
# The cloud metadata servers, whatever their ranges are called.
_METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)

# IPv6 prefixes whose addresses carry an IPv4 address (RFC 6052, RFC 8215, RFC 4291).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One secret's signature of one attempt (`v1,<base64>`)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secret: str,
    message_id: str,
    timestamp: int,
    body: bytes,
    previous_secret: str | None = None,
) -> dict[str, str]:
    """An attempt's headers, signed by `secret` and, during a rotation's grace period, by
    `previous_secret` too."""
    keys = (secret,) if previous_secret is None else (secret, previous_secret)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, message_id, timestamp, body) for key in keys),
    }


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo's client, NAT64's well-known
    prefix, the old IPv4-compatible form): where a connection to it may really go."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """An address on the internet: not loopback, private, link-local, shared, reserved,
    multicast, unspecified or a metadata server; an IPv6 address that carries an IPv4 one is
    judged by that one, and a local-use NAT64 address (whose IPv4 cannot be told) is not."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        address = _embedded_ipv4(address) or address
    if any(address in network for network in _METADATA):
        return False
    return address.is_global and not address.is_multicast


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, *, allow_insecure: bool, allow_private: bool) -> str:
    """The URL to store, or Invalid naming `url` with what is wrong with it: absolute http(s)
    (https unless `allow_insecure`), a host, no credentials, and (unless `allow_private`) no
    host that is a non-public address or a name of this machine."""

    def invalid(message: str) -> Invalid:
        return Invalid.field(("body", "url"), message, "url_invalid")

    if any(not char.isprintable() or char.isspace() for char in url.strip()):
        raise invalid("must not contain spaces or control characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise invalid("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise invalid("must be an absolute http(s) URL")
    if parts.scheme == "http" and not allow_insecure:
        raise invalid("must use https (GENVID_WEBHOOK_ALLOW_INSECURE is off)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise invalid("must name a host")
    if parts.username is not None or parts.password is not None:
        raise invalid("must not contain credentials")
    if port == 0:
        raise invalid("must not use port 0")
    if not allow_private:
        address = _literal_address(host)
        local = host.lower() in _LOCAL_NAMES or host.lower().endswith(".localhost")
        if local or (address is not None and not is_public(address)):
            raise invalid(
                f"host {host} is not a public address "
                "(GENVID_WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)"
            )
    return parts.geturl()


def event_type(status: str) -> str:
    return f"generation.{status.lower()}"


def message(body: dict[str, Any], published_at: datetime) -> tuple[str, str, bytes]:
    """A transition (a stream message's body) as a webhook: its message id, event type and
    body. The data is what the event streams carry but for the signed URLs (they expire and
    are made per request: a receiver fetches the generation through the api)."""
    kind = event_type(str(body["status"]))
    payload = {
        "type": kind,
        "timestamp": published_at.isoformat(),
        "data": {key: body.get(key) for key in EVENT_FIELDS},
    }
    encoded = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return msg_id(body["id"], int(body["seq"])), kind, encoded


def retry_delay(
    attempts: int,
    delays: Sequence[float],
    uniform: Callable[[float, float], float] = random.uniform,
) -> float | None:
    """Seconds before the next attempt after `attempts` failed ones; None: no attempt left."""
    if attempts > len(delays):
        return None
    return delays[attempts - 1] * uniform(1 - JITTER, 1 + JITTER)
