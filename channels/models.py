"""What the chat channels pass between the webhook, the queue and the worker."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

MetaChannel = Literal["whatsapp", "messenger"]
# How a shopper's message reached us: typed text, a reply button (WhatsApp
# interactive or template button), a list row, a Messenger postback or quick reply,
# or something we cannot read (a photo, a voice note, a location).
InboundKind = Literal[
    "text", "button", "list", "postback", "quick_reply", "unsupported"
]


class Inbound(BaseModel):
    """One message from a shopper, queued for the channel worker."""

    job: Literal["inbound"] = "inbound"
    channel: MetaChannel
    # WhatsApp id (the number, digits only) or Messenger page-scoped id: also the
    # sender id Rasa keeps the conversation under.
    sender: str
    # Meta's id of the message: what its retries of one delivery share.
    message_id: str
    kind: InboundKind
    # What goes to Rasa: the typed text, or the payload behind the button.
    text: str = ""
    # The label the shopper tapped, for the timeline.
    title: str = ""
    timestamp: datetime


class OutboxWake(BaseModel):
    """Replies are waiting in the shopper's outbox (from an agent or a campaign)."""

    job: Literal["outbox"] = "outbox"
    channel: MetaChannel
    sender: str


Job = Annotated[Inbound | OutboxWake, Field(discriminator="job")]


class Status(BaseModel):
    """Meta's word on a message we sent: sent, delivered, read or failed."""

    channel: MetaChannel
    recipient: str
    message_id: str
    status: str
    timestamp: datetime
    error: str = ""


class Outgoing(BaseModel):
    """One Graph API send, and what it says for the timeline."""

    kind: str
    body: dict[str, Any]
    text: str = ""
