"""Meta's webhook: `GET /meta/webhook` (the subscription handshake) and `POST /meta/webhook`
(deliveries for a Page's `feed` and an Instagram account's `comments` and `mentions`).

A delivery is checked against `X-Hub-Signature-256` (`sha256=` + HMAC-SHA256 of the raw body
keyed by the app secret, compared in constant time): missing is 401, wrong is 403, and
nothing is stored either way. A good one is written to the outbox (kind `meta_delivery`,
keyed by the body's hash, so a replayed delivery is not stored twice) and only then
answered 200: Meta gets its quick answer, and an acknowledged delivery survives a crash.
`integrations.meta.MetaInbox` turns it into mentions through the usual pipeline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

from aiohttp import web

from bot.outbox import META_DELIVERY, enqueue
from bot.service import CareService

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
KNOWN_OBJECTS = frozenset({"page", "instagram"})


def signature(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends with `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class MetaWebhook:
    def __init__(self, service: CareService, *, app_secret: str, verify_token: str) -> None:
        self.service = service
        self._secret = app_secret
        self._verify = verify_token

    async def handshake(self, request: web.Request) -> web.Response:
        """Meta's subscription check: echo `hub.challenge` for the right verify token."""
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self._verify.encode()
        ):
            return web.Response(text=query.get("hub.challenge", ""))
        log.warning("meta webhook: a subscription handshake with a wrong verify token refused")
        return web.Response(status=403, text="verify token mismatch")

    async def deliver(self, request: web.Request) -> web.Response:
        body = await request.read()
        sent = request.headers.get(SIGNATURE_HEADER, "")
        if not sent:
            return web.Response(status=401, text=f"{SIGNATURE_HEADER} missing")
        if not hmac.compare_digest(sent.encode(), signature(body, self._secret).encode()):
            log.warning("meta webhook: a delivery with a bad signature refused")
            return web.Response(status=403, text="bad signature")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="not JSON")
        if not isinstance(payload, dict) or payload.get("object") not in KNOWN_OBJECTS:
            return web.Response(text="ignored")  # a subscription this bot does not read
        stored = await asyncio.to_thread(self._store, payload, hashlib.sha256(body).hexdigest())
        return web.Response(text="EVENT_RECEIVED" if stored else "ALREADY_RECEIVED")

    def _store(self, payload: dict[str, object], digest: str) -> bool:
        with self.service.store.write() as db:
            item = enqueue(
                db,
                kind=META_DELIVERY,
                now=self.service.clock.now(),
                payload={"body": payload},
                dedupe_key=f"meta:{digest}",
            )
        return item is not None
