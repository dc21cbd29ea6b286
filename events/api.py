"""Tracking routes, compatible with the Segment HTTP tracking API."""

from typing import Annotated, Any

import redis
from fastapi import APIRouter, Body, Depends

from core.auth import WriteKeySource
from core.redis import get_redis
from core.settings import get_settings
from events import service
from events.models import Accepted, Batch

router = APIRouter(prefix="/v1", tags=["tracking"])
RedisDep = Annotated[redis.Redis, Depends(get_redis)]


def _accept(
    message_type: str, body: dict[str, Any], source: str, client: redis.Redis
) -> Accepted:
    # Validated in the service, so a refused message is kept in the failed store.
    return service.accept_message(
        client, get_settings().tracking.stream, {**body, "type": message_type},
        source=source,
    )  # fmt: skip


def _route(message_type: str) -> None:
    def handler(
        body: Annotated[dict[str, Any], Body()],
        source: WriteKeySource,
        client: RedisDep,
    ) -> Accepted:
        return _accept(message_type, body, source, client)

    handler.__name__ = f"{message_type}_message"
    handler.__doc__ = f"Accept one Segment `{message_type}` message."
    router.post(f"/{message_type}", response_model=Accepted)(handler)


for _type in ("track", "page", "screen", "identify", "group", "alias"):
    _route(_type)


@router.post("/batch", response_model=Accepted)
def batch_messages(batch: Batch, source: WriteKeySource, client: RedisDep) -> Accepted:
    """Accept up to 2,500 messages; the good ones are kept even when some are not."""
    return service.accept_batch(
        client, get_settings().tracking.stream, batch, source=source
    )
