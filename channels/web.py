"""The website chat channel: the storefront's chat box talks to Rasa through here."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from channels.rasa import RasaClient
from core.auth import WriteKeySource
from core.settings import get_settings

router = APIRouter(prefix="/v1/channels/web", tags=["channels"])


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


def get_rasa() -> RasaClient:
    settings = get_settings().rasa
    return RasaClient(
        settings.url, settings.timeout_seconds, settings.token.get_secret_value()
    )


@router.post("/messages", response_model=WebReply)
def send_message(
    message: WebMessage,
    _source: WriteKeySource,
    rasa: Annotated[RasaClient, Depends(get_rasa)],
) -> WebReply:
    replies = rasa.send(message.sender, message.text, metadata={"channel": "web"})
    return WebReply(messages=[BotMessage.model_validate(r) for r in replies])
