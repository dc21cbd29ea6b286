"""Request size limits of the tracking API, enforced before a body is read whole:
32 KB for one message, 500 KB for a batch (Segment's limits)."""

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events.service import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES

BATCH_PATHS = {"/v1/batch", "/v1/b", "/v1/import"}
MESSAGE_PATHS = {
    f"/v1/{name}"
    for name in (
        "track",
        "page",
        "screen",
        "identify",
        "group",
        "alias",
        "t",
        "p",
        "s",
        "i",
        "g",
        "a",
    )
}


class BodyTooLargeError(Exception):
    pass


class TrackingBodyLimit:
    """Answers 413 in the one error shape when a tracking request is too large."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = _limit_for(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            await _too_large(send, int(declared), limit)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await _too_large(send, received, limit)


def _limit_for(scope: Scope) -> int | None:
    if scope["type"] != "http" or scope.get("method") != "POST":
        return None
    path = scope["path"].rstrip("/")
    if path in BATCH_PATHS:
        return MAX_BATCH_BYTES
    if path in MESSAGE_PATHS:
        return MAX_MESSAGE_BYTES
    return None


async def _too_large(send: Send, size: int, limit: int) -> None:
    what = "batch" if limit == MAX_BATCH_BYTES else "message"
    detail: dict[str, Any] = {
        "type": f"{what}_too_large",
        "loc": ["body"],
        "msg": f"request body is at least {size} bytes; the limit for a {what} is "
        f"{limit} bytes ({limit // 1024} KB)",
    }
    body = json.dumps({"detail": [detail]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
