"""Tracking API schemas, with the Segment spec's field names."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MessageType = Literal["track", "page", "screen", "identify", "group", "alias"]
MESSAGE_TYPES: tuple[str, ...] = MessageType.__args__  # type: ignore[attr-defined]


MAX_CLOCK_AHEAD = timedelta(hours=1)


class Message(BaseModel):
    """One Segment message. Unknown top-level fields are kept, as Segment does."""

    # Some clients send numeric user ids; Segment accepts them as strings.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    type: MessageType
    userId: str | None = Field(default=None, max_length=512)
    anonymousId: str | None = Field(default=None, max_length=512)
    messageId: str = Field(
        default_factory=lambda: f"cdp-{uuid.uuid4()}", max_length=512
    )
    timestamp: datetime | None = None
    sentAt: datetime | None = None
    event: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    previousId: str | None = None
    groupId: str | None = None
    context: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    integrations: dict[str, Any] = {}

    @model_validator(mode="after")
    def _check_required(self) -> "Message":
        if not (self.userId or self.anonymousId):
            raise ValueError("a message needs userId or anonymousId")
        if self.type == "track" and not self.event:
            raise ValueError("a track message needs an event name in 'event'")
        if self.type == "alias" and not self.previousId:
            raise ValueError("an alias message needs 'previousId'")
        if self.type == "group" and not self.groupId:
            raise ValueError("a group message needs 'groupId'")
        return self

    def corrected_timestamp(self, received_at: datetime) -> datetime:
        """Event time corrected for the device clock: received time minus the gap
        between when the device sent it and when it says it happened."""
        if self.timestamp is None:
            return received_at
        timestamp = _aware(self.timestamp)
        if self.sentAt is not None:
            timestamp = received_at - max(_aware(self.sentAt) - timestamp, timedelta(0))
        if timestamp > received_at + MAX_CLOCK_AHEAD:
            # Nothing happens in the future: a clock this far ahead is wrong, and a
            # 2099 time would win every "most recent" decision for ever.
            return received_at
        return timestamp


class Batch(BaseModel):
    # Items are validated one by one, so one bad item does not sink the batch.
    batch: list[Any] = Field(max_length=2500)
    sentAt: datetime | None = None
    context: dict[str, Any] = {}
    integrations: dict[str, Any] = {}


class Rejected(BaseModel):
    index: int
    messageId: str | None
    errors: list[dict[str, Any]]


class Accepted(BaseModel):
    success: bool = True
    accepted: int
    rejected: list[Rejected] = []


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
