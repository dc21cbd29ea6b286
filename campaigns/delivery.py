"""Delivering the sends that journeys wrote: email through SMTP, webhooks as
signed JSON posts, chat and WhatsApp through the channels. A send is delivered at
least once and recorded once.

The pending sends are read, then delivered with no transaction open: a channel
call may take seconds, and a chat campaign's goes through the assistant back into
the api, which must not wait for this worker's write lock. Each send is then
marked sent in a transaction of its own, with its impression (the id of the send)
and the ``Promotion Viewed`` exposure that persuasion types learn from.

A failure that may pass (the server is away, a 4xx temporary SMTP answer, an HTTP
5xx or 429) is tried again after 1, 4, 16, 64 minutes and so on, ``max_attempts``
times in all; a permanent one (an address the server refuses, an HTTP 4xx) gives up
at once. A worker that stops between
the server's acceptance and the commit delivers the message again on restart:
the mail carries the same Message-ID and the webhook the same Idempotency-Key,
so the receiving side can tell.

Webhook signature: ``X-CDP-Signature: sha256=<hex>``, the HMAC-SHA256 with the
campaign's secret of ``<X-CDP-Timestamp>.<body>``; a receiver recomputes it and
refuses old timestamps.
"""

import hashlib
import hmac
import json
import logging
import os
import smtplib
import time as clock
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

import httpx
from bs4 import BeautifulSoup
from sqlmodel import Session, col, select

from campaigns import service
from campaigns.definitions import CampaignFolder
from campaigns.models import CampaignImpression, CampaignSend
from channels import handover, inbox
from channels.rasa import get_rasa
from core.errors import ConflictError, UnavailableError
from core.redis import get_redis
from core.settings import get_settings
from profiles.models import Profile

logger = logging.getLogger(__name__)
FIRST_RETRY = timedelta(minutes=1)


class DeliveryError(Exception):
    """A send that did not go out; ``permanent`` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def deliver_due(
    session: Session, *, now: datetime, folder: CampaignFolder, limit: int = 100
) -> int:
    """Deliver the pending sends whose time has come; returns how many went out."""
    # A paused campaign's pending messages wait for it to run again.
    running = {c.id: c for c in folder.campaigns() if c.is_running(now)}
    sends = session.exec(
        select(CampaignSend)
        .where(CampaignSend.status == "pending", CampaignSend.next_attempt_at <= now,
               col(CampaignSend.campaign).in_(sorted(running)))
        .order_by(col(CampaignSend.next_attempt_at)).limit(limit)
    ).all()  # fmt: skip
    for taken in sends:
        session.expunge(taken)  # keeps what was read, with no transaction behind it
    session.commit()  # ends the read (on SQLite, the write lock)
    delivered = 0
    for taken in sends:
        failure: DeliveryError | None = None
        try:
            deliver(taken, running[taken.campaign].spec.placement)
        except DeliveryError as exc:
            failure = exc
        except Exception as exc:
            # A message that breaks delivery itself is given up, with the reason,
            # so that it cannot hold the messages behind it.
            logger.exception(
                "campaign message could not be built", extra={"send": taken.id}
            )
            failure = DeliveryError(f"{type(exc).__name__}: {exc}", permanent=True)
        send = session.get(CampaignSend, taken.id)
        if send is None or send.status != "pending":
            session.commit()
            continue  # removed meanwhile (an erased profile): nothing to record
        if failure is not None:
            _failed(session, send, str(failure), now, permanent=failure.permanent)
            continue
        send.status, send.sent_at, send.attempts = "sent", now, send.attempts + 1
        send.reason = ""
        session.add(send)
        profile = session.get(Profile, send.profile_id)
        impression = CampaignImpression.of_send(send, now)
        if profile is not None:
            service.record(session, impression, profile)  # commits with the send
        else:
            session.commit()
        delivered += 1
        logger.info(
            "campaign message delivered",
            extra={"send": send.id, "campaign": send.campaign, "channel": send.channel},
        )
    return delivered


def _failed(
    session: Session, send: CampaignSend, reason: str, now: datetime, *,
    permanent: bool,
) -> None:  # fmt: skip
    send.attempts += 1
    send.reason = reason[:500]
    if permanent or send.attempts >= get_settings().campaigns.max_attempts:
        send.status = "failed"
        logger.warning(
            "campaign message not delivered; gave up",
            extra={"send": send.id, "attempts": send.attempts, "reason": reason},
        )
    else:
        send.next_attempt_at = now + FIRST_RETRY * 4 ** (send.attempts - 1)
        logger.info(
            "campaign message not delivered; will retry",
            extra={"send": send.id, "attempts": send.attempts, "reason": reason},
        )
    session.add(send)
    session.commit()


def deliver(send: CampaignSend, placement: Any) -> None:
    if send.channel == "email":
        send_email(
            send, from_name=placement.email.from_name if placement.email else None
        )
    elif send.channel == "webhook":
        post_webhook(send, str(placement.webhook.url), placement.webhook.secret_env)
    elif send.channel == "chat":
        open_chat(send)
    elif send.channel == "whatsapp":
        queue_whatsapp_template(send, placement.whatsapp)
    else:
        raise DeliveryError(f"no delivery for channel {send.channel!r}", permanent=True)


# Conversations ----------------------------------------------------------------------


def open_chat(send: CampaignSend) -> None:
    """The assistant opens the website chat with the variant's line and the
    products; the chat box shows it on its next poll, and the campaign id goes on
    the events of the conversation that follows."""
    try:
        said = handover.open_conversation(
            get_redis(), get_rasa(), "web", send.payload["to"],
            campaign_id=send.campaign, products=send.payload.get("products") or [],
            message=send.payload.get("text"),
        )  # fmt: skip
    except ConflictError:
        raise DeliveryError(
            "a person has the conversation; tried again later"
        ) from None
    except UnavailableError:
        raise DeliveryError("the assistant is not reachable") from None
    if not said:
        raise DeliveryError(
            "the assistant said nothing: a chat campaign needs products it can show",
            permanent=True,
        )


def queue_whatsapp_template(send: CampaignSend, placement: Any) -> None:
    """Hand the template to the WhatsApp channel, which sends each shopper's
    messages in order and applies its rules (an approved template, marketing
    consent outside the 24-hour window); what it did is on the profile."""
    if not get_settings().whatsapp.enabled:
        raise DeliveryError(
            "the WhatsApp channel is not enabled (CDP_WHATSAPP__ENABLED)"
        )
    template: dict[str, Any] = {
        "name": placement.template,
        "components": [
            {"type": "body",
             "parameters": [{"type": "text", "text": send.payload.get("text", "")}]}
        ],
    }  # fmt: skip
    if placement.language:
        template["language"] = placement.language
    client = get_redis()
    sender = send.payload["to"]
    client.rpush(
        handover.outbox("whatsapp", sender), json.dumps({"template": template})
    )
    inbox.wake(client, "whatsapp", sender)


# Email ------------------------------------------------------------------------------


def email_message(send: CampaignSend, *, from_name: str | None) -> EmailMessage:
    settings = get_settings().campaigns
    payload = send.payload
    message = EmailMessage()
    message["From"] = formataddr((one_line(from_name or ""), settings.smtp.sender))
    message["To"] = one_line(payload["to"])
    message["Subject"] = one_line(payload.get("subject") or "")
    message["Date"] = formatdate(localtime=False)
    domain = settings.smtp.sender.rpartition("@")[2] or "localhost"
    # The same send always has the same id: a repeated delivery can be told apart.
    message["Message-ID"] = f"<{send.id}@{domain}>"
    base = settings.public_url.rstrip("/")
    unsubscribe = f"{base}/v1/campaigns/unsubscribe/{send.id}"
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    html = payload.get("html") or ""
    message.set_content(plain_text(html))
    message.add_alternative(html, subtype="html")
    return message


BLOCKS = ("p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "table",
          "ul", "ol")  # fmt: skip


def plain_text(html: str) -> str:
    """The mail's text part: the words of the HTML, each link's address after its
    text, one line per block and one blank line at most between blocks."""
    soup = BeautifulSoup(html, "html.parser")
    for link in soup.find_all("a", href=True):
        link.append(f" <{link['href']}>")
    for cell in soup.find_all(["td", "th"]):
        cell.append("  ")
    for block in soup.find_all(BLOCKS):
        block.append("\n")
    lines = [" ".join(line.split()) for line in soup.get_text("").splitlines()]
    text: list[str] = []
    for line in lines:
        if line or (text and text[-1]):
            text.append(line)
    return "\n".join(text).strip() + "\n"


def one_line(value: str) -> str:
    """A header value: its whitespace, line breaks included, as single spaces."""
    return " ".join(value.split())


def send_email(send: CampaignSend, *, from_name: str | None) -> None:
    smtp = get_settings().campaigns.smtp
    message = email_message(send, from_name=from_name)
    kind = smtplib.SMTP_SSL if smtp.security == "ssl" else smtplib.SMTP
    try:
        with kind(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as server:
            if smtp.security == "starttls":
                server.starttls()
            if smtp.username and smtp.password:
                server.login(smtp.username, smtp.password.get_secret_value())
            server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"the mail server refused {message['To']}: {codes}",
            permanent=all(code >= 500 for code in codes),
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"the mail server answered {exc.smtp_code} {exc.smtp_error!r}",
            permanent=exc.smtp_code >= 500,
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"the mail server at {smtp.host}:{smtp.port} could not be reached: {exc}"
        ) from None


# Webhooks ---------------------------------------------------------------------------


def webhook_body(send: CampaignSend) -> bytes:
    body = {
        "type": "campaign.message", "send_id": send.id, "campaign": send.campaign,
        "variant": send.variant, "profile_id": send.profile_id,
        "message": send.payload.get("html"), "products": send.payload.get("products"),
        "trigger": send.payload.get("trigger"), "cues": send.cues,
    }  # fmt: skip
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def post_webhook(send: CampaignSend, url: str, secret_env: str) -> None:
    secret = os.environ.get(secret_env)
    if not secret:
        raise DeliveryError(
            f"the webhook secret is not set: environment variable {secret_env}"
        )
    body = webhook_body(send)
    timestamp = str(int(clock.time()))
    headers = {
        "Content-Type": "application/json", "X-CDP-Timestamp": timestamp,
        "X-CDP-Signature": sign(secret, timestamp, body), "Idempotency-Key": send.id,
        "User-Agent": "cdp-campaigns",
    }  # fmt: skip
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise DeliveryError(
            f"the webhook at {url} could not be reached: {exc}"
        ) from None
    if response.is_success:
        return
    temporary = response.status_code >= 500 or response.status_code in (408, 429)
    raise DeliveryError(
        f"the webhook at {url} answered {response.status_code}",
        permanent=not temporary,
    )
