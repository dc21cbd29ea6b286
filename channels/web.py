"""The website chat channel: the chat widget (static/chat.js) talks to Rasa through
here."""

import json
from pathlib import Path
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from channels import handover
from channels.rasa import RasaClient, get_rasa
from core.auth import WriteKeySource
from core.redis import get_redis
from core.settings import get_settings

router = APIRouter(prefix="/v1/channels/web", tags=["channels"])
WIDGET = Path(__file__).parent / "static" / "chat.js"


class WebMessage(BaseModel):
    # The tracker's anonymous id, so chatting and browsing are one profile.
    sender: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    text: str = Field(min_length=1, max_length=2000)


class BotMessage(BaseModel):
    text: str | None = None
    buttons: list[dict[str, Any]] = []
    custom: dict[str, Any] | None = None


class WebReply(BaseModel):
    messages: list[BotMessage]
    # True while a person has the conversation and the assistant is silent.
    with_agent: bool = False


@router.post("/messages", response_model=WebReply)
def send_message(
    message: WebMessage,
    _source: WriteKeySource,
    rasa: Annotated[RasaClient, Depends(get_rasa)],
    client: Annotated[redis.Redis, Depends(get_redis)],
) -> WebReply:
    """The shopper's message to the assistant, or, while a person has the
    conversation, to the person; replies waiting from a person come first."""
    waiting = [
        BotMessage.model_validate(json.loads(r))
        for r in handover.take_agent_replies(client, "web", message.sender)
    ]
    if handover.current(client, "web", message.sender) is not None:
        handover.note(client, "web", message.sender, "shopper", message.text)
        keep_text = get_settings().channels.keep_message_text
        text = {"text": message.text} if keep_text else {}
        handover.record(client, message.sender, "Chat Message", {**text, "to": "agent"})
        return WebReply(messages=waiting, with_agent=True)
    replies = rasa.send(message.sender, message.text, metadata={"channel": "web"})
    return WebReply(messages=waiting + [BotMessage.model_validate(r) for r in replies])


@router.get("/messages/{sender}", response_model=WebReply)
def poll_messages(
    sender: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:-]+$", max_length=128)],
    _source: WriteKeySource,
    client: Annotated[redis.Redis, Depends(get_redis)],
) -> WebReply:
    """Replies a person sent since the chat box last asked."""
    waiting = handover.take_agent_replies(client, "web", sender)
    return WebReply(
        messages=[BotMessage.model_validate(json.loads(r)) for r in waiting],
        with_agent=handover.current(client, "web", sender) is not None,
    )


@router.get("/chat.js", include_in_schema=False)
def chat_widget() -> FileResponse:
    """The chat widget a shop embeds with one script tag (README: Chat widget)."""
    # Short caching: a shop picks up a new widget within minutes, not at once.
    return FileResponse(
        WIDGET,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )
