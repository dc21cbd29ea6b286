"""Webhook payloads in the shapes Meta documents (WhatsApp Cloud API and Messenger
Platform webhooks), and the signature Meta puts on them."""

import hashlib
import hmac
import json
import time
from typing import Any

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
PHONE_NUMBER_ID = "106540352242922"
PAGE_ID = "104620785783921"
WA_ID = "31612345678"
PSID = "6789012345678901"


def signed(payload: dict[str, Any], secret: str = APP_SECRET) -> tuple[bytes, str]:
    """The body as Meta sends it and its X-Hub-Signature-256 header."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, f"sha256={digest}"


def _now(at: float | None) -> str:
    return str(int(at if at is not None else time.time()))


# WhatsApp -----------------------------------------------------------------------


def whatsapp(value: dict[str, Any]) -> dict[str, Any]:
    """One change of the messages field of a WhatsApp Business Account."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881",
                         "phone_number_id": PHONE_NUMBER_ID},
            **value,
        }}]}],
    }  # fmt: skip


def wa_messages(*messages: dict[str, Any], wa_id: str = WA_ID) -> dict[str, Any]:
    contacts = [{"profile": {"name": "Sheena Nelson"}, "wa_id": wa_id}]
    return whatsapp({"contacts": contacts, "messages": list(messages)})


def wa_text(
    text: str, message_id: str, *, wa_id: str = WA_ID, at: float | None = None
) -> dict[str, Any]:
    return {"from": wa_id, "id": message_id, "timestamp": _now(at), "type": "text",
            "text": {"body": text}}  # fmt: skip


def wa_button_reply(
    button_id: str, title: str, message_id: str, *, wa_id: str = WA_ID
) -> dict[str, Any]:
    return {
        "context": {"from": "15550783881", "id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI"},
        "from": wa_id, "id": message_id, "timestamp": _now(None),
        "type": "interactive",
        "interactive": {"type": "button_reply",
                        "button_reply": {"id": button_id, "title": title}},
    }  # fmt: skip


def wa_list_reply(
    row_id: str, title: str, message_id: str, *, wa_id: str = WA_ID
) -> dict[str, Any]:
    return {
        "context": {"from": "15550783881", "id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI"},
        "from": wa_id, "id": message_id, "timestamp": _now(None),
        "type": "interactive",
        "interactive": {"type": "list_reply",
                        "list_reply": {"id": row_id, "title": title,
                                       "description": "Next Day to 2 Days"}},
    }  # fmt: skip


def wa_image(message_id: str, *, wa_id: str = WA_ID) -> dict[str, Any]:
    return {"from": wa_id, "id": message_id, "timestamp": _now(None), "type": "image",
            "image": {"mime_type": "image/jpeg", "sha256": "abc",
                      "id": "1003383421387256"}}  # fmt: skip


def wa_status(
    message_id: str, status: str, *, wa_id: str = WA_ID, error: int | None = None
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": message_id, "status": status, "timestamp": _now(None),
        "recipient_id": wa_id,
        "conversation": {"id": "6ceb9d929c7ca5d0a4a8a4c5d8f8b3a1",
                         "origin": {"type": "service"}},
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
    }  # fmt: skip
    if error is not None:
        raw["errors"] = [{"code": error, "title": "Message undeliverable"}]
    return whatsapp({"statuses": [raw]})


# Messenger ----------------------------------------------------------------------


def messenger(*events: dict[str, Any], psid: str = PSID) -> dict[str, Any]:
    """A page's webhook call with messaging events from one shopper."""
    millis = int(time.time() * 1000)
    messaging = [
        {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": millis,
         **event}
        for event in events
    ]  # fmt: skip
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": millis,
                                         "messaging": messaging}]}  # fmt: skip


def ms_text(text: str, mid: str) -> dict[str, Any]:
    return {"message": {"mid": mid, "text": text}}


def ms_quick_reply(text: str, payload: str, mid: str) -> dict[str, Any]:
    return {"message": {"mid": mid, "text": text, "quick_reply": {"payload": payload}}}


def ms_postback(title: str, payload: str, mid: str) -> dict[str, Any]:
    return {"postback": {"mid": mid, "title": title, "payload": payload}}


def ms_echo(text: str, mid: str) -> dict[str, Any]:
    return {"message": {"is_echo": True, "app_id": 1517776481860111, "mid": mid,
                        "text": text}}  # fmt: skip


def ms_delivery(*mids: str) -> dict[str, Any]:
    return {"delivery": {"mids": list(mids), "watermark": int(time.time() * 1000)}}
