"""Conversational campaigns through the channels: the assistant opening the
website chat (Rasa played by the fake), and a WhatsApp template handed to the
channel worker and sent through the fake Graph API."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, select

from campaigns import service
from campaigns.definitions import CampaignFolder
from campaigns.worker import CampaignWorker
from channels import handover
from channels.worker import ChannelWorker
from core.settings import get_settings
from profiles.models import Profile
from tests.campaigns.test_journeys import apply, event, sends_of
from tests.channels.conftest import drain
from tests.channels.fakes import FakeGraph, FakeRasa
from tests.channels.payloads import WA_ID
from tests.channels.test_whatsapp import grant_marketing
from tests.conftest import bearer

# A Monday, 10:00 UTC (noon in Amsterdam).
NOW = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def viewed_three_times(engine: Engine) -> redis.Redis:
    return apply(
        engine,
        *(
            event(n, NOW - timedelta(minutes=30 - n), "Product Viewed", sku="MH01")
            for n in range(3)
        ),
    )


def test_chat_campaign_opens_the_conversation_and_counts_the_order(
    meta_env: str, engine: Engine, rasa: FakeRasa, shipped: CampaignFolder,
    stocked: None, redis_client: redis.Redis,
) -> None:  # fmt: skip
    client = viewed_three_times(engine)

    CampaignWorker(engine, client, folder=shipped).tick(now=NOW)

    line = (
        "Still looking at the Chaz Kangeroo Hoodie? I can compare it with similar "
        "ones or help with the size."
    )
    # One entity per product: the assistant's nudge reads each as a product.
    assert rasa.triggered == [
        ("v-1", "campaign_nudge", [
            {"entity": "campaign_id", "value": "comparison_chat"},
            {"entity": "product", "value": "MH01"},
            {"entity": "message", "value": line},
        ]),
    ]  # fmt: skip
    # What the chat box shows on its next poll.
    waiting = handover.take_agent_replies(client, "web", "v-1")
    assert [json.loads(m)["text"] for m in waiting] == [line]
    [send] = sends_of(engine, "comparison_chat")
    assert send.status == "sent"
    apply(
        engine,
        event(9, NOW + timedelta(minutes=5), "Order Completed", order_id="o-7",
              total=52.0, products=[{"sku": "MH01"}]),
    )  # fmt: skip
    with Session(engine) as session:
        results = service.list_results(
            session,
            shipped.get("comparison_chat"),  # type: ignore[arg-type]
            now=NOW + timedelta(hours=1),
        )
    assert (results.impressions, results.conversions, results.revenue) == (
        1, 1, 52.0,
    )  # fmt: skip


def test_the_store_takes_writes_while_a_chat_campaign_is_being_delivered(
    meta_env: str, engine: Engine, rasa: FakeRasa, shipped: CampaignFolder,
    stocked: None, redis_client: redis.Redis,
) -> None:  # fmt: skip
    """The assistant's actions call the api while the campaign worker waits for
    Rasa; on SQLite a worker holding its write lock then made them wait 30 s."""
    client = viewed_three_times(engine)
    # The api's writes, in another connection that waits at most half a second.
    url = engine.url.render_as_string(hide_password=False)
    other = create_engine(url, connect_args={"timeout": 0.5} if url.startswith(
        "sqlite") else {})  # fmt: skip
    refused: list[Exception] = []

    def write_as_the_api() -> None:
        try:
            with Session(other) as session:
                profile = session.exec(select(Profile)).one()
                profile.traits = {**profile.traits, "chatting": True}
                session.add(profile)
                session.commit()
        except Exception as exc:  # reported by the assertion below
            refused.append(exc)

    rasa.while_triggered = write_as_the_api
    CampaignWorker(engine, client, folder=shipped).tick(now=NOW)
    other.dispose()

    assert refused == []
    [send] = sends_of(engine, "comparison_chat")
    assert send.status == "sent"
    with Session(engine) as session:
        assert session.exec(select(Profile)).one().traits["chatting"] is True


def test_chat_campaign_waits_while_a_person_has_the_conversation(
    meta_env: str, engine: Engine, rasa: FakeRasa, shipped: CampaignFolder,
    stocked: None, api: TestClient,
) -> None:  # fmt: skip
    client = viewed_three_times(engine)
    taken = api.post(
        "/v1/conversations/web/v-1/handover", json={"reason": "sizes"},
        headers=bearer(),
    )  # fmt: skip
    assert taken.status_code == 201, taken.text

    CampaignWorker(engine, client, folder=shipped).tick(now=NOW)

    assert rasa.triggered == []
    [send] = sends_of(engine, "comparison_chat")
    assert (send.status, send.reason) == (
        "pending", "a person has the conversation; tried again later",
    )  # fmt: skip


@pytest.fixture
def whatsapp_campaign(
    shipped: CampaignFolder, monkeypatch: pytest.MonkeyPatch
) -> CampaignFolder:
    path = shipped.folder / "whatsapp_cart_reminder.yml"
    path.write_text(path.read_text().replace("status: paused", "status: active"))
    monkeypatch.setenv("CDP_WHATSAPP__APPROVED_TEMPLATES", '["cart_reminder"]')
    get_settings.cache_clear()
    return shipped


def on_whatsapp(n: int, at: datetime, name: str, **properties: Any) -> dict[str, Any]:
    found = event(n, at, name, **properties)
    del found["anonymousId"]
    found["context"] = {"externalIds": [{"type": "whatsapp_id", "id": f"+{WA_ID}"}]}
    return found


def test_whatsapp_cart_reminder_goes_out_as_the_approved_template(
    meta_env: str, engine: Engine, whatsapp_campaign: CampaignFolder, stocked: None,
    graph: FakeGraph, make_worker: Callable[[Engine], ChannelWorker],
) -> None:  # fmt: skip
    grant_marketing(engine, f"+{WA_ID}")
    client = apply(
        engine,
        on_whatsapp(1, NOW - timedelta(hours=3), "Product Added", sku="MH01"),
        on_whatsapp(2, NOW - timedelta(hours=2), "Product Added", sku="MH02"),
    )
    CampaignWorker(engine, client, folder=whatsapp_campaign).tick(now=NOW)
    drain(make_worker(engine))

    assert graph.sent() == [{
        "messaging_product": "whatsapp", "recipient_type": "individual",
        "to": WA_ID, "type": "template",
        "template": {
            "name": "cart_reminder", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Teton Pullover Hoodie, Chaz Kangeroo Hoodie"},
            ]}],
        },
    }]  # fmt: skip
    [send] = sends_of(engine, "whatsapp_cart_reminder")
    assert send.status == "sent"
