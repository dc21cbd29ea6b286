"""Conversations handed to a person. While a conversation is handed over, the
channels do not pass the shopper's messages to Rasa: they record them on the
profile and wait for an agent, whose replies reach the shopper through the same
channel. An agent releases the conversation to give it back to the assistant."""

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from channels import inbox
from channels.rasa import RasaClient, get_rasa
from core.auth import AdminOnly
from core.errors import ConflictError
from core.redis import get_redis
from core.settings import get_settings
from events import queue

router = APIRouter(
    prefix="/v1/conversations", tags=["channels"], dependencies=[AdminOnly]
)
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
Channel = Annotated[str, Path(pattern=r"^(web|whatsapp|messenger)$")]
Sender = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:+-]+$")
]


def _handovers() -> str:
    # Beside the event stream, so two platforms sharing a Redis keep their own.
    return f"{get_settings().tracking.stream}:handovers"


class HandoverRequest(BaseModel):
    reason: str = Field(default="", max_length=500)


class Handover(BaseModel):
    channel: str
    sender: str
    since: datetime
    reason: str = ""


class AgentMessage(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    agent: str = Field(default="agent", max_length=64)


def _key(channel: str, sender: str) -> str:
    return f"{channel}:{sender}"


def current(client: redis.Redis, channel: str, sender: str) -> Handover | None:
    raw = client.hget(_handovers(), _key(channel, sender))
    return None if raw is None else Handover.model_validate_json(raw)


def outbox(channel: str, sender: str) -> str:
    return f"{get_settings().tracking.stream}:outbox:{channel}:{sender}"


def take_agent_replies(client: redis.Redis, channel: str, sender: str) -> list[str]:
    """Agent replies waiting for the shopper, oldest first, taken once."""
    key = outbox(channel, sender)
    pipe = client.pipeline()
    pipe.lrange(key, 0, -1)
    pipe.delete(key)
    replies, _ = pipe.execute()
    return [r.decode() if isinstance(r, bytes) else str(r) for r in replies]


# The live thread an agent works from: kept apart from the profile, whose events
# carry text only where the shop's privacy setting allows, and gone on release.
THREAD_SECONDS = 7 * 24 * 3600


def _thread(channel: str, sender: str) -> str:
    return f"{get_settings().tracking.stream}:agent-thread:{channel}:{sender}"


def note(client: redis.Redis, channel: str, sender: str, who: str, text: str) -> None:
    """A message of the handed-over conversation, for the agent to read."""
    line = {"from": who, "text": text, "at": datetime.now(UTC).isoformat()}
    pipe = client.pipeline()
    pipe.rpush(_thread(channel, sender), json.dumps(line))
    pipe.expire(_thread(channel, sender), THREAD_SECONDS)
    pipe.execute()


class ThreadMessage(BaseModel):
    # "shopper" or "agent"
    from_: str = Field(alias="from")
    text: str
    at: datetime


def record(
    client: redis.Redis, sender: str, event: str, properties: dict[str, Any]
) -> None:
    """Put a message of the handed-over conversation on the shopper's profile."""
    now = datetime.now(UTC).isoformat()
    queue.publish(client, get_settings().tracking.stream, [{
        "type": "track", "event": event, "anonymousId": sender, "userId": None,
        "messageId": f"handover-{uuid.uuid4()}", "timestamp": now,
        "originalTimestamp": now, "receivedAt": now, "sentAt": None,
        "properties": properties, "context": {"channel": "chat"}, "traits": {},
        "integrations": {}, "source": "assistant",
    }])  # fmt: skip


@router.post("/{channel}/{sender}/handover", response_model=Handover, status_code=201)
def hand_over(
    channel: Channel, sender: Sender, request: HandoverRequest, client: RedisDep
) -> Handover:
    """Flag the conversation for a person; the assistant stays silent until released."""
    handover = current(client, channel, sender) or Handover(
        channel=channel, sender=sender, since=datetime.now(UTC), reason=request.reason
    )
    client.hset(_handovers(), _key(channel, sender), handover.model_dump_json())
    record(
        client,
        sender,
        "Agent Requested",
        {"channel": channel, "reason": request.reason},
    )
    return handover


@router.get("/handovers", response_model=list[Handover])
def list_handovers(client: RedisDep) -> list[Handover]:
    """Conversations waiting for or talking to a person, oldest first."""
    rows = [Handover.model_validate_json(v) for v in client.hvals(_handovers())]
    return sorted(rows, key=lambda h: h.since)


@router.get("/{channel}/{sender}/messages", response_model=list[ThreadMessage])
def read_thread(
    channel: Channel, sender: Sender, client: RedisDep
) -> list[ThreadMessage]:
    """What the shopper and the agents wrote since the handover, oldest first."""
    lines = client.lrange(_thread(channel, sender), 0, -1)
    return [ThreadMessage.model_validate_json(line) for line in lines]


@router.post("/{channel}/{sender}/messages", status_code=202)
def agent_reply(
    channel: Channel, sender: Sender, message: AgentMessage, client: RedisDep
) -> dict[str, str]:
    """An agent's answer; the shopper's channel delivers it."""
    reply = {"text": message.text, "agent": message.agent}
    client.rpush(outbox(channel, sender), json.dumps(reply))
    inbox.wake(client, channel, sender)  # WhatsApp and Messenger send it from there
    note(client, channel, sender, "agent", message.text)
    keep_text = get_settings().channels.keep_message_text
    text = {"text": message.text} if keep_text else {}
    record(client, sender, "Agent Message", {**text, "agent": message.agent})
    return {"status": "queued"}


class Nudge(BaseModel):
    """A campaign opening a conversation: why, and the products it is about."""

    campaign_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    products: list[str] = Field(default=[], max_length=5)
    message: str | None = Field(default=None, max_length=500)


@router.post("/{channel}/{sender}/nudge", status_code=202)
def nudge(
    channel: Channel, sender: Sender, nudge: Nudge, client: RedisDep,
    rasa: Annotated[RasaClient, Depends(get_rasa)],
) -> dict[str, Any]:  # fmt: skip
    """Start a conversation through Rasa's trigger-intent API. Never while a person
    has the conversation. The campaign id goes on the profile's events."""
    sent = open_conversation(
        client, rasa, channel, sender, campaign_id=nudge.campaign_id,
        products=nudge.products, message=nudge.message,
    )  # fmt: skip
    return {"status": "sent", "messages": sent}


def open_conversation(
    client: redis.Redis, rasa: RasaClient, channel: str, sender: str, *,
    campaign_id: str, products: list[str], message: str | None = None,
) -> int:  # fmt: skip
    """What the nudge route and conversational campaigns do: the assistant speaks
    first and its replies wait in the shopper's channel (the chat box shows them
    on its next poll); returns how many. ``ConflictError`` while a person has the
    conversation, ``UnavailableError`` when Rasa does not answer."""
    if current(client, channel, sender) is not None:
        raise ConflictError(
            "a person has this conversation; campaigns wait until it is released",
            loc=["path", "sender"],
        )
    # Rasa's short form ({"product": [...]}) would make one entity whose value is
    # the whole list: one entity per product, as the NLU gives them.
    entities = [{"entity": "campaign_id", "value": campaign_id}]
    entities += [{"entity": "product", "value": sku} for sku in products]
    if message:
        entities.append({"entity": "message", "value": message})
    replies = rasa.trigger_intent(sender, "campaign_nudge", entities)
    for reply in replies:
        client.rpush(outbox(channel, sender), json.dumps(reply))
    inbox.wake(client, channel, sender)
    return len(replies)


@router.delete("/{channel}/{sender}/handover", status_code=204)
def release(channel: Channel, sender: Sender, client: RedisDep) -> None:
    """Give the conversation back to the assistant."""
    client.hdel(_handovers(), _key(channel, sender))
    client.delete(_thread(channel, sender))
    record(client, sender, "Agent Released", {"channel": channel})
