from collections.abc import Callable

import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from channels.messenger import to_outgoing
from channels.worker import ChannelWorker
from tests.channels.conftest import drain, post, timeline
from tests.channels.fakes import TOKEN, FakeGraph, FakeRasa
from tests.channels.payloads import (
    PAGE_ID,
    PSID,
    VERIFY_TOKEN,
    messenger,
    ms_delivery,
    ms_echo,
    ms_postback,
    ms_quick_reply,
    ms_text,
    signed,
)
from tests.conftest import bearer

WEBHOOK = "/v1/channels/messenger/webhook"
DETAILS = '/product_details{"product":"MJ01"}'


def product(n: int) -> dict[str, object]:
    return {"sku": f"MJ{n:02d}", "name": f"Proteus Fitness Jackshirt number {n} " * 3,
            "price": 45.0 + n, "currency": "USD", "reason": "new this week",
            "url": f"https://shop.example.com/products/MJ{n:02d}"}  # fmt: skip


def test_verify_webhook_matching_token_echoes_the_challenge(api: TestClient) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
             "hub.challenge": "CHALLENGE_ACCEPTED"}  # fmt: skip

    response = api.get(WEBHOOK, params=query)

    assert response.status_code == 200, response.text
    assert response.text == "CHALLENGE_ACCEPTED"


def test_webhook_forged_signature_is_refused_with_403_and_not_answered(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa
) -> None:
    body, forged = signed(messenger(ms_text("hi", "m_F1")), secret="guessed")

    response = api.post(WEBHOOK, content=body, headers={"X-Hub-Signature-256": forged})
    drain(worker)

    assert response.status_code == 403, response.text
    assert rasa.received == []


def test_text_postback_and_quick_reply_reach_rasa_and_echoes_do_not(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    payload = messenger(
        ms_text("hi", "m_1"),
        ms_postback("Details", DETAILS, "m_2"),
        ms_quick_reply("Yes", "/affirm", "m_3"),
    )
    echo = messenger(ms_echo("You said: hi", "m_4"), psid=PAGE_ID)

    queued = [post(api, "messenger", p).json()["queued"] for p in (payload, echo)]
    drain(worker)

    assert queued == [3, 0]
    assert [(m["sender"], m["message"]) for m in rasa.received] == [
        (PSID, "hi"), (PSID, DETAILS), (PSID, "/affirm")
    ]  # fmt: skip
    first = graph.requests[0]
    assert first.path == f"/v21.0/{PAGE_ID}/messages"
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert first.body == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                          "message": {"text": "You said: hi"}}  # fmt: skip


def test_to_outgoing_up_to_three_buttons_become_a_button_template() -> None:
    buttons = [{"title": "Show me something cheaper please", "payload": "/cheaper"},
               {"title": "Talk to a person", "payload": "/ask_human"}]  # fmt: skip

    [out] = to_outgoing({"text": "Anything else?", "buttons": buttons})

    payload = out.body["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert payload["buttons"] == [
        {"type": "postback", "title": "Show me something c…", "payload": "/cheaper"},
        {"type": "postback", "title": "Talk to a person", "payload": "/ask_human"},
    ]


def test_to_outgoing_more_than_three_buttons_become_at_most_13_quick_replies() -> None:
    buttons = [
        {"title": f"Colour option {n:02d}", "payload": f"/c{n}"} for n in range(15)
    ]

    [out] = to_outgoing({"text": "Which colour?", "buttons": buttons})

    replies = out.body["quick_replies"]
    assert out.body["text"] == "Which colour?"
    assert [r["payload"] for r in replies] == [f"/c{n}" for n in range(13)]
    assert all(len(r["title"]) <= 20 and r["content_type"] == "text" for r in replies)


def test_to_outgoing_products_become_a_carousel_of_at_most_ten_cards() -> None:
    [out] = to_outgoing({"custom": {"products": [product(n) for n in range(12)]}})

    payload = out.body["attachment"]["payload"]
    first = payload["elements"][0]
    assert payload["template_type"] == "generic"
    assert len(payload["elements"]) == 10
    assert all(len(e["title"]) <= 80 for e in payload["elements"])
    assert first["subtitle"] == "$45.00 · new this week"
    assert first["default_action"] == {
        "type": "web_url", "url": "https://shop.example.com/products/MJ00"
    }  # fmt: skip
    assert first["buttons"][1] == {
        "type": "postback", "title": "Details",
        "payload": '/product_details{"product":"MJ00"}',
    }  # fmt: skip


def test_search_reply_goes_out_as_a_product_carousel(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    rasa.reply = lambda sender, text: [
        {"recipient_id": sender, "text": "Have a look:"},
        {"recipient_id": sender, "custom": {"products": [product(1), product(2)]}},
    ]
    post(api, "messenger", messenger(ms_text("jackets", "m_P1")))

    drain(worker)

    text, carousel = graph.sent()
    assert text["message"] == {"text": "Have a look:"}
    elements = carousel["message"]["attachment"]["payload"]["elements"]
    assert [e["buttons"][0]["url"] for e in elements] == [
        "https://shop.example.com/products/MJ01",
        "https://shop.example.com/products/MJ02",
    ]


def test_agent_reply_outside_the_window_goes_out_with_the_human_agent_tag(
    api: TestClient, worker: ChannelWorker, graph: FakeGraph
) -> None:
    conversation = f"/v1/conversations/messenger/{PSID}"
    api.post(f"{conversation}/handover", json={}, headers=bearer())
    api.post(f"{conversation}/messages", json={"text": "Hi, Sam here."},
             headers=bearer())  # fmt: skip

    drain(worker)

    assert graph.sent() == [{
        "recipient": {"id": PSID}, "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT", "message": {"text": "Hi, Sam here."},
    }]  # fmt: skip


def test_shopper_gets_the_page_scoped_id_identity_and_receipts_are_recorded(
    api: TestClient,
    engine: Engine,
    make_worker: Callable[[Engine], ChannelWorker],
    graph: FakeGraph,
    redis_client: redis.Redis,
) -> None:
    post(api, "messenger", messenger(ms_text("hello", "m_E1")))
    drain(make_worker(engine))
    [sent] = [r.body for r in graph.requests]
    delivered = post(api, "messenger", messenger(ms_delivery("m_FAKE1")))

    events, identities = timeline(engine, redis_client, f"messenger_id:{PSID}")

    assert sent["recipient"] == {"id": PSID}
    assert delivered.json() == {"queued": 0, "statuses": 1}
    assert [e.name for e in events] == [
        "Message Received", "Message Sent", "Message Status Updated"
    ]  # fmt: skip
    assert events[2].properties["message_id"] == "m_FAKE1"
    assert ("messenger_id", PSID) in {(i.type, i.value) for i in identities}
