"""Administration of the failed-events store: list, inspect, replay, discard."""

from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Path, Query

from core.auth import AdminOnly
from core.errors import NotFoundError
from core.redis import get_redis
from core.settings import get_settings
from events import failed

router = APIRouter(
    prefix="/v1/failed-events", tags=["tracking"], dependencies=[AdminOnly]
)
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
EntryId = Annotated[
    str, Path(pattern=r"^\d{1,19}-\d{1,19}$", description="stream entry id")
]


class FailedEventNotFoundError(NotFoundError):
    code = "failed_event_not_found"


def _not_found(entry_id: str) -> FailedEventNotFoundError:
    return FailedEventNotFoundError(
        f"no failed event {entry_id!r}", loc=["path", "entry_id"]
    )


def _stream() -> str:
    return get_settings().tracking.stream


@router.get("", response_model=failed.FailedEventPage)
def list_failed_events(
    client: RedisDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(pattern=r"^\d{1,19}-\d{1,19}$")] = None,
) -> failed.FailedEventPage:
    """Newest first, with the reason each message was refused or not applied."""
    return failed.list_failed(client, _stream(), limit=limit, before=before)


@router.get("/{entry_id}", response_model=failed.FailedEvent)
def read_failed_event(entry_id: EntryId, client: RedisDep) -> failed.FailedEvent:
    found = failed.get(client, _stream(), entry_id)
    if found is None:
        raise _not_found(entry_id)
    return found


@router.post("/{entry_id}/replay", response_model=failed.ReplayResult)
def replay_failed_event(entry_id: EntryId, client: RedisDep) -> failed.ReplayResult:
    result = failed.replay(client, _stream(), entry_id)
    if result is None:
        raise _not_found(entry_id)
    return result


@router.delete("/{entry_id}", status_code=204)
def discard_failed_event(entry_id: EntryId, client: RedisDep) -> None:
    if not failed.delete(client, _stream(), entry_id):
        raise _not_found(entry_id)
