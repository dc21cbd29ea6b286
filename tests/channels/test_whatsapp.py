import json
import logging
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from channels import handover
from channels.whatsapp import to_outgoing
from channels.worker import HANDOVER_NOTICE, UNSUPPORTED_REPLY, ChannelWorker
from core.settings import get_settings
from profiles import service as profiles
from profiles.models import ConsentCreate, ConsentStatus, IdentityType
from tests.channels.conftest import drain, post, timeline
from tests.channels.fakes import TOKEN, FakeGraph, FakeRasa, Reply, graph_error
from tests.channels.payloads import (
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WA_ID,
    signed,
    wa_button_reply,
    wa_image,
    wa_list_reply,
    wa_messages,
    wa_status,
    wa_text,
)
from tests.conftest import bearer

WEBHOOK = "/v1/channels/whatsapp/webhook"
PRODUCTS = [
    {"sku": "MJ01", "name": "Beaumont Summit Kit", "price": 42.0, "currency": "USD",
     "url": "https://shop.example.com/products/MJ01", "reason": "popular this week"},
    {"sku": "MJ02", "name": "Hyperion Elements Jacket", "price": 51.0,
     "currency": "EUR", "url": "https://shop.example.com/products/MJ02", "reason": ""},
]  # fmt: skip


def texts(graph: FakeGraph) -> list[str]:
    """What the shopper read, message by message."""
    found = []
    for body in graph.sent():
        if body["type"] == "text":
            found.append(body["text"]["body"])
        elif body["type"] == "interactive":
            found.append(body["interactive"]["body"]["text"])
        else:
            found.append(f"template {body['template']['name']}")
    return found


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("channels")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_verify_webhook_matching_token_echoes_the_challenge(api: TestClient) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
             "hub.challenge": "1158201444"}  # fmt: skip

    response = api.get(WEBHOOK, params=query)

    assert response.status_code == 200, response.text
    assert response.text == "1158201444"


def test_verify_webhook_wrong_token_is_refused_with_403(api: TestClient) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "guess",
             "hub.challenge": "1158201444"}  # fmt: skip

    response = api.get(WEBHOOK, params=query)

    assert response.status_code == 403, response.text
    assert response.json()["detail"][0]["type"] == "verification_refused"
    assert "1158201444" not in response.text


def test_webhook_unsigned_call_is_refused_with_401_and_not_answered(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    body, _signature = signed(wa_messages(wa_text("hello", "wamid.U1")))

    response = api.post(WEBHOOK, content=body)
    drain(worker)

    assert response.status_code == 401, response.text
    assert response.json()["detail"][0]["type"] == "signature_missing"
    assert (rasa.received, graph.requests) == ([], [])


def test_webhook_forged_signature_is_refused_with_403_and_logged_without_content(
    api: TestClient,
    worker: ChannelWorker,
    rasa: FakeRasa,
    graph: FakeGraph,
    log_records: list[logging.LogRecord],
) -> None:
    payload = wa_messages(wa_text("my card is 4111 1111", "wamid.F1"))
    body, forged = signed(payload, secret="not-the-app-secret")

    response = api.post(WEBHOOK, content=body, headers={"X-Hub-Signature-256": forged})
    drain(worker)

    assert response.status_code == 403, response.text
    assert response.json()["detail"][0]["type"] == "signature_mismatch"
    assert (rasa.received, graph.requests) == ([], [])
    [record] = [r for r in log_records if r.levelno == logging.WARNING]
    logged = json.dumps(record.__dict__, default=str)
    assert record.channel == "whatsapp"  # type: ignore[attr-defined]
    assert "4111" not in logged
    assert WA_ID not in logged


def test_webhook_channel_not_enabled_answers_404(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_WHATSAPP__ENABLED", "false")
    get_settings.cache_clear()

    response = post(api, "whatsapp", wa_messages(wa_text("hello", "wamid.D1")))

    assert response.status_code == 404, response.text
    assert "CDP_WHATSAPP__ENABLED" in response.json()["detail"][0]["msg"]


def test_webhook_answers_before_rasa_is_asked(api: TestClient, rasa: FakeRasa) -> None:
    response = post(api, "whatsapp", wa_messages(wa_text("hello", "wamid.Q1")))

    assert response.status_code == 200, response.text
    assert response.json() == {"queued": 1, "statuses": 0}
    assert rasa.received == []  # the worker answers, from the queue


def test_text_message_is_answered_through_the_graph_api(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    post(api, "whatsapp", wa_messages(wa_text("any rain jackets?", "wamid.T1")))

    drain(worker)

    assert rasa.received == [{"sender": WA_ID, "message": "any rain jackets?",
                              "metadata": {"channel": "whatsapp"}}]  # fmt: skip
    [request] = graph.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.body == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID,
        "type": "text",
        "text": {"body": "You said: any rain jackets?", "preview_url": True},
    }  # fmt: skip


def test_button_and_list_replies_send_their_payload_to_rasa(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa
) -> None:
    details = '/product_details{"product":"MJ01"}'
    post(api, "whatsapp", wa_messages(wa_button_reply("/affirm", "Yes", "wamid.B1")))
    post(api, "whatsapp", wa_messages(wa_list_reply(details, "Beaumont", "wamid.L1")))

    drain(worker)

    assert [m["message"] for m in rasa.received] == ["/affirm", details]


def test_repeated_delivery_of_a_message_is_answered_once(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    payload = wa_messages(wa_text("hello", "wamid.R1"))

    first = post(api, "whatsapp", payload)
    drain(worker)
    again = post(api, "whatsapp", payload)  # Meta did not see our 200 in time
    drain(worker)

    assert (first.json()["queued"], again.json()["queued"]) == (1, 0)
    assert again.status_code == 200
    assert len(rasa.received) == 1
    assert texts(graph) == ["You said: hello"]


def test_search_reply_goes_out_as_buttons_then_product_links(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    rasa.reply = lambda sender, text: [
        {"recipient_id": sender, "text": "Two jackets you may like:",
         "buttons": [{"title": p["name"],
                      "payload": f'/product_details{{"product":"{p["sku"]}"}}'}
                     for p in PRODUCTS]},
        {"recipient_id": sender, "custom": {"products": PRODUCTS}},
    ]  # fmt: skip
    post(api, "whatsapp", wa_messages(wa_text("jackets", "wamid.P1")))

    drain(worker)

    buttons, cards = graph.sent()
    assert buttons["interactive"]["type"] == "button"
    replies = [b["reply"] for b in buttons["interactive"]["action"]["buttons"]]
    assert replies == [
        {"id": '/product_details{"product":"MJ01"}', "title": "Beaumont Summit Kit"},
        {"id": '/product_details{"product":"MJ02"}', "title": "Hyperion Elements J…"},
    ]
    assert cards["type"] == "text"
    assert cards["text"]["body"] == (
        "*Beaumont Summit Kit* - $42.00\n_popular this week_\n"
        "https://shop.example.com/products/MJ01\n\n"
        "*Hyperion Elements Jacket* - 51.00 EUR\n"
        "https://shop.example.com/products/MJ02"
    )


def test_to_outgoing_three_choices_become_reply_buttons_within_limits() -> None:
    sizes = ["Small (chest 36-38 in)", "Medium (chest 39-41 in)", "Large"]
    buttons = [{"title": s, "payload": f'/inform{{"size":"{s[0]}"}}'} for s in sizes]

    [out] = to_outgoing({"text": "Which size?", "buttons": buttons})

    interactive = out.body["interactive"]
    titles = [b["reply"]["title"] for b in interactive["action"]["buttons"]]
    assert interactive["type"] == "button"
    assert titles == ["Small (chest 36-38…", "Medium (chest 39-41…", "Large"]
    assert all(len(title) <= 20 for title in titles)


def test_to_outgoing_twelve_choices_become_a_list_of_ten_rows() -> None:
    buttons = [
        {"title": f"Hero Hoodie in colour number {n}", "payload": f"/pick{{{n}}}"}
        for n in range(12)
    ]

    [out] = to_outgoing({"text": "Pick a colour", "buttons": buttons})

    action = out.body["interactive"]["action"]
    [section] = action["sections"]
    assert out.body["interactive"]["type"] == "list"
    assert len(action["button"]) <= 20
    assert [row["id"] for row in section["rows"]] == [
        f"/pick{{{n}}}" for n in range(10)
    ]
    assert all(len(row["title"]) <= 24 for row in section["rows"])
    assert section["rows"][0]["description"] == "Hero Hoodie in colour number 0"


def test_to_outgoing_long_text_with_buttons_keeps_the_body_within_1024() -> None:
    text = " ".join(f"sentence{n}." for n in range(600))  # about 7,000 characters
    buttons = [
        {"title": "Yes", "payload": "/affirm"},
        {"title": "No", "payload": "/deny"},
    ]

    outgoing = to_outgoing({"text": text, "buttons": buttons})

    *lead, choice = outgoing
    shown = [o.body["text"]["body"] for o in lead] + [
        choice.body["interactive"]["body"]["text"]
    ]
    assert all(len(part) <= 4096 for part in shown)
    assert len(shown[-1]) <= 1024
    assert " ".join(shown).split() == text.split()


def test_unsupported_message_gets_a_text_only_reply_without_rasa(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    post(api, "whatsapp", wa_messages(wa_image("wamid.I1")))

    drain(worker)

    assert rasa.received == []
    assert texts(graph) == [UNSUPPORTED_REPLY]


def test_handover_tells_the_shopper_once_and_sends_the_agents_reply(
    api: TestClient, worker: ChannelWorker, rasa: FakeRasa, graph: FakeGraph
) -> None:
    conversation = f"/v1/conversations/whatsapp/{WA_ID}"
    api.post(f"{conversation}/handover", json={"reason": "refund"}, headers=bearer())
    post(api, "whatsapp", wa_messages(wa_text("hello?", "wamid.H1")))
    post(api, "whatsapp", wa_messages(wa_text("anyone there?", "wamid.H2")))
    drain(worker)

    sent = api.post(
        f"{conversation}/messages", json={"text": "Hi, Sam here."}, headers=bearer()
    )
    drain(worker)

    thread = api.get(f"{conversation}/messages", headers=bearer()).json()
    api.delete(f"{conversation}/handover", headers=bearer())
    after_release = api.get(f"{conversation}/messages", headers=bearer()).json()

    assert sent.status_code == 202, sent.text
    assert rasa.received == []
    assert texts(graph) == [HANDOVER_NOTICE, "Hi, Sam here."]
    # The agent reads the thread there, not on the profile (text stays off it).
    assert [(m["from"], m["text"]) for m in thread] == [
        ("shopper", "hello?"), ("shopper", "anyone there?"), ("agent", "Hi, Sam here."),
    ]  # fmt: skip
    assert after_release == []


def test_assistant_that_hands_over_is_not_followed_by_a_second_notice(
    api: TestClient,
    worker: ChannelWorker,
    rasa: FakeRasa,
    graph: FakeGraph,
    redis_client: redis.Redis,
) -> None:
    def hand_over(sender: str, text: str) -> list[dict[str, str]]:
        # What action_handover does through the api, and what it says.
        request = handover.HandoverRequest(reason=text)
        handover.hand_over("whatsapp", sender, request, redis_client)
        return [{"recipient_id": sender, "text": "Someone from our team will answer."}]

    rasa.reply = hand_over
    post(api, "whatsapp", wa_messages(wa_text("a person please", "wamid.A1")))
    post(api, "whatsapp", wa_messages(wa_text("thanks", "wamid.A2")))

    drain(worker)

    assert len(rasa.received) == 1
    assert texts(graph) == ["Someone from our team will answer."]


def test_status_callbacks_are_recorded_on_the_profile(
    api: TestClient, engine: Engine, redis_client: redis.Redis
) -> None:
    for status, error in (("sent", None), ("delivered", None), ("failed", 131047)):
        response = post(api, "whatsapp", wa_status("wamid.OUT1", status, error=error))
        assert response.json() == {"queued": 0, "statuses": 1}, response.text

    events, _ = timeline(engine, redis_client, f"whatsapp_id:{WA_ID}")

    recorded = {
        (e.name, e.properties["message_id"], e.properties["status"],
         e.properties.get("error"))
        for e in events
    }  # fmt: skip
    assert recorded == {
        ("Message Status Updated", "wamid.OUT1", "sent", None),
        ("Message Status Updated", "wamid.OUT1", "delivered", None),
        ("Message Status Updated", "wamid.OUT1", "failed",
         "131047: Message undeliverable"),
    }  # fmt: skip


def test_messages_land_on_the_profile_with_the_phone_identity_and_no_text(
    api: TestClient,
    engine: Engine,
    make_worker: Callable[[Engine], ChannelWorker],
    redis_client: redis.Redis,
) -> None:
    post(api, "whatsapp", wa_messages(wa_text("my size is 42", "wamid.E1")))
    drain(make_worker(engine))

    events, identities = timeline(engine, redis_client, f"phone:+{WA_ID}")

    assert [e.name for e in events] == ["Message Received", "Message Sent"]
    assert events[0].properties == {
        "channel": "whatsapp", "message_id": "wamid.E1", "kind": "text"
    }  # fmt: skip
    assert events[1].properties["message_id"].startswith("wamid.FAKE")
    assert "42" not in json.dumps([e.properties for e in events])
    kinds = {(i.type, i.value) for i in identities}
    assert {("phone", f"+{WA_ID}"), ("whatsapp_id", f"+{WA_ID}")} <= kinds


def test_message_text_is_kept_when_the_privacy_settings_allow_it(
    api: TestClient,
    engine: Engine,
    make_worker: Callable[[Engine], ChannelWorker],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDP_CHANNELS__KEEP_MESSAGE_TEXT", "true")
    get_settings.cache_clear()
    post(api, "whatsapp", wa_messages(wa_text("my size is 42", "wamid.K1")))
    drain(make_worker(engine))

    events, _ = timeline(engine, redis_client, f"whatsapp_id:{WA_ID}")

    assert [(e.name, e.properties["text"]) for e in events] == [
        ("Message Received", "my size is 42"),
        ("Message Sent", "You said: my size is 42"),
    ]


# The 24-hour customer-service window ----------------------------------------------


def grant_marketing(engine: Engine, wa_id: str) -> None:
    with Session(engine) as session:
        profile = profiles.resolve(
            session, [(IdentityType.whatsapp_id, wa_id)], source="test"
        )
        session.commit()
        consent = ConsentCreate(
            purpose="whatsapp_marketing", status=ConsentStatus.granted
        )
        profiles.record_consent(session, profile, consent)


def agent_says(api: TestClient, text: str, wa_id: str = WA_ID) -> None:
    response = api.post(
        f"/v1/conversations/whatsapp/{wa_id}/messages",
        json={"text": text},
        headers=bearer(),
    )
    assert response.status_code == 202, response.text


def test_reply_outside_the_window_without_consent_waits_for_the_shopper(
    api: TestClient,
    engine: Engine,
    make_worker: Callable[[Engine], ChannelWorker],
    graph: FakeGraph,
    redis_client: redis.Redis,
) -> None:
    worker = make_worker(engine)
    day_ago = time.time() - 25 * 3600
    post(api, "whatsapp", wa_messages(wa_text("hi", "wamid.W0", at=day_ago)))
    agent_says(api, "Your parcel left today.")
    drain(worker)
    nothing_yet = list(graph.sent())

    post(api, "whatsapp", wa_messages(wa_text("any news?", "wamid.W1")))
    drain(worker)

    assert nothing_yet == []
    # The answer to the old message waited too: nothing is lost, all in order.
    assert texts(graph) == [
        "You said: hi",
        "Your parcel left today.",
        "You said: any news?",
    ]
    events, _ = timeline(engine, redis_client, f"whatsapp_id:{WA_ID}")
    held = [e.properties for e in events if e.name == "Message Held"]
    assert [h["origin"] for h in held] == ["assistant", "agent"]
    assert all("no whatsapp_marketing consent" in h["reason"] for h in held)


def test_reply_outside_the_window_with_consent_sends_the_reopen_template_once(
    api: TestClient,
    engine: Engine,
    make_worker: Callable[[Engine], ChannelWorker],
    graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDP_WHATSAPP__APPROVED_TEMPLATES", '["reopen_chat"]')
    monkeypatch.setenv("CDP_WHATSAPP__REOPEN_TEMPLATE", "reopen_chat")
    get_settings.cache_clear()
    grant_marketing(engine, WA_ID)
    agent_says(api, "Your parcel left today.")
    agent_says(api, "It arrives on Friday.")

    drain(make_worker(engine))

    assert graph.sent() == [{
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID,
        "type": "template",
        "template": {"name": "reopen_chat", "language": {"code": "en_US"}},
    }]  # fmt: skip


@pytest.mark.parametrize(
    ("template", "consent", "sent"),
    [("spring_sale", True, True), ("spring_sale", False, False),
     ("unapproved_blast", True, False)],
)  # fmt: skip
def test_template_outside_the_window_needs_approval_and_consent(
    api: TestClient,
    engine: Engine,
    make_worker: Callable[[Engine], ChannelWorker],
    graph: FakeGraph,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    template: str,
    consent: bool,
    sent: bool,
) -> None:
    monkeypatch.setenv("CDP_WHATSAPP__APPROVED_TEMPLATES", '["spring_sale"]')
    get_settings.cache_clear()
    if consent:
        grant_marketing(engine, WA_ID)
    redis_client.rpush(
        handover.outbox("whatsapp", WA_ID), json.dumps({"template": {"name": template}})
    )
    handover.inbox.wake(redis_client, "whatsapp", WA_ID)

    drain(make_worker(engine))

    assert texts(graph) == ([f"template {template}"] if sent else [])
    if not sent:
        events, _ = timeline(engine, redis_client, f"whatsapp_id:{WA_ID}")
        [refused] = [e for e in events if e.name == "Message Not Sent"]
        reason = refused.properties["reason"]
        assert "whatsapp_marketing consent" in reason or "['spring_sale']" in reason


# Sending reliably -----------------------------------------------------------------


def test_rate_limited_send_is_retried_after_the_wait_meta_names(
    api: TestClient, worker: ChannelWorker, graph: FakeGraph
) -> None:
    limited = graph_error(130429, "Rate limit hit")
    graph.script = [Reply(429, {"Retry-After": "1"}, limited)]
    post(api, "whatsapp", wa_messages(wa_text("hello", "wamid.RL1")))

    drain(worker)

    first, second = graph.requests
    assert second.at - first.at >= 0.95
    assert second.body == first.body


def test_send_failing_past_the_retry_budget_is_given_up_and_recorded(
    api: TestClient,
    engine: Engine,
    make_worker: Callable[[Engine], ChannelWorker],
    graph: FakeGraph,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDP_WHATSAPP__RETRY_SECONDS", "1.5")
    get_settings.cache_clear()
    worker = make_worker(engine)
    graph.script = [Reply(503, {"Retry-After": "1"}) for _ in range(10)]
    post(api, "whatsapp", wa_messages(wa_text("hello", "wamid.G1")))

    drain(worker)
    drain(worker)  # given up means done: the message is not tried again

    assert len(graph.requests) == 2
    events, _ = timeline(engine, redis_client, f"whatsapp_id:{WA_ID}")
    [failed] = [e for e in events if e.name == "Message Not Sent"]
    assert failed.properties["attempts"] == 2
    assert "HTTP 503" in failed.properties["reason"]
    stream = f"{get_settings().tracking.stream}:channels:failed"
    [(_id, entry)] = redis_client.xrange(stream)
    assert (entry["channel"], entry["kind"], entry["origin"]) == (
        "whatsapp", "text", "assistant"
    )  # fmt: skip


def test_api_serves_the_webhooks(meta_env: str) -> None:
    from api.main import create_app

    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
             "hub.challenge": "42"}  # fmt: skip
    with TestClient(create_app(load_index=False)) as client:
        answers = [
            client.get(f"/v1/channels/{channel}/webhook", params=query).text
            for channel in ("whatsapp", "messenger")
        ]

    assert answers == ["42", "42"]
