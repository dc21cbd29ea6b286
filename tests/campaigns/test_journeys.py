"""Hybrid campaigns end to end: events through the events worker, the campaigns
worker's ticks at chosen moments, mail read from a real SMTP server on localhost,
clicks through the api, orders, and the results."""

import email
import email.policy
import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from campaigns import journeys
from campaigns.definitions import CampaignFolder
from campaigns.models import CampaignJourney, CampaignSend
from campaigns.worker import CampaignWorker, touched_key
from catalog.models import Product, ProductCreate
from events.worker import Worker
from profiles import service as profiles
from profiles.models import ConsentCreate, ConsentStatus
from tests.conftest import bearer
from tests.events.test_worker import drain, publish

# A Monday, 09:00 UTC: 11:00 in Amsterdam, outside the shipped quiet hours.
T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    """A real SMTP server on localhost; the campaigns' mail lands in ``messages``."""
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CDP_CAMPAIGNS__SMTP__PORT", str(port))
    monkeypatch.setenv("CDP_CAMPAIGNS__PUBLIC_URL", "http://shop.test")
    from core.settings import get_settings

    get_settings.cache_clear()
    yield sink
    controller.stop()


def event(n: int, at: datetime, name: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track", "messageId": f"m-{n}", "anonymousId": "v-1", "event": name,
        "properties": properties, "timestamp": at.isoformat(),
        "receivedAt": at.isoformat(), "source": "website",
    }  # fmt: skip


def identify(at: datetime, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify", "messageId": "m-id", "anonymousId": "v-1",
        "traits": {"email": "ada@example.com", "first_name": "Ada",
                   "timezone": "Europe/Amsterdam", **traits},
        "timestamp": at.isoformat(), "receivedAt": at.isoformat(), "source": "website",
    }  # fmt: skip


def apply(engine: Engine, *envelopes: dict[str, Any]) -> redis.Redis:
    client = publish(*envelopes)
    drain(Worker(engine, client))
    return client


def consent(engine: Engine, purpose: str = "email_marketing") -> str:
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        profiles.record_consent(
            session, profile,
            ConsentCreate(purpose=purpose, status=ConsentStatus.granted, source="form"),
        )  # fmt: skip
        return profile.id


def abandon_cart(engine: Engine) -> redis.Redis:
    """Ada views and adds two products between 09:00 and 09:04, then goes quiet."""
    return apply(
        engine,
        identify(T0),
        event(1, T0 + timedelta(minutes=1), "Product Viewed", sku="MH01"),
        event(2, T0 + timedelta(minutes=2), "Product Added", sku="MH01", quantity=1),
        event(3, T0 + timedelta(minutes=3), "Product Viewed", sku="MH02"),
        event(4, T0 + timedelta(minutes=4), "Product Added", sku="MH02", quantity=1),
    )


def sends_of(engine: Engine, campaign: str) -> list[CampaignSend]:
    with Session(engine) as session:
        statement = select(CampaignSend).where(CampaignSend.campaign == campaign)
        return list(session.exec(statement.order_by(CampaignSend.created_at)))


def journey_of(engine: Engine, campaign: str) -> CampaignJourney:
    with Session(engine) as session:
        statement = select(CampaignJourney).where(CampaignJourney.campaign == campaign)
        [found] = session.exec(statement).all()
        return found


def test_abandoned_cart_mails_the_cart_counts_the_click_and_the_order(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None,
    client: TestClient,
) -> None:  # fmt: skip
    redis_client = abandon_cart(engine)
    consent(engine)
    worker = CampaignWorker(engine, redis_client, folder=shipped)

    worker.tick(now=T0 + timedelta(minutes=30))
    assert smtp.messages == []  # quiet for 26 minutes only
    worker.tick(now=T0 + timedelta(minutes=65))

    [mail] = smtp.messages
    assert mail["Subject"] == "Ada, your cart is waiting"
    assert mail["To"] == "ada@example.com"
    assert mail["From"] == "Demo Shop <shop@example.com>"
    assert mail["List-Unsubscribe"].startswith("<http://shop.test/v1/campaigns/unsub")
    html = mail.get_body(("html",)).get_content()
    assert "Chaz Kangeroo Hoodie" in html
    assert "Teton Pullover Hoodie" in html
    plain = mail.get_body(("plain",)).get_content()
    assert "Teton Pullover Hoodie <http://shop.test/v1/campaigns/click/" in plain
    links = re.findall(r'href="http://shop.test(/v1/campaigns/click/[^"]+)"', html)
    assert len(links) == 3  # two products and the shop

    clicked = client.get(links[0].replace("&amp;", "&"), follow_redirects=False)
    assert clicked.status_code == 303
    assert clicked.headers["location"].startswith("http://127.0.0.1:8000/shop/p/")
    apply(
        engine,
        event(5, T0 + timedelta(hours=3), "Order Completed", order_id="o-1",
              total=122.0, products=[{"sku": "MH01"}, {"sku": "MH02"}]),
    )  # fmt: skip
    worker.tick(now=T0 + timedelta(days=1, minutes=66))

    assert len(smtp.messages) == 1  # converted: no last call
    ended = journey_of(engine, "abandoned_cart_email")
    assert (ended.status, ended.reason) == ("exited", "step 3: converted, exit")
    results = client.get(
        "/v1/campaigns/abandoned_cart_email/results", headers=bearer()
    ).json()
    assert (results["impressions"], results["clicks"]) == (1, 1)
    assert (results["conversions"], results["revenue"]) == (1, 122.0)
    assert results["sends"] == {"sent": 1}
    assert results["journeys"] == {"exited": 1}


def test_abandoned_cart_last_call_goes_at_the_shoppers_own_active_hour(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None
) -> None:
    worker = CampaignWorker(engine, abandon_cart(engine), folder=shipped)
    consent(engine)
    worker.tick(now=T0 + timedelta(minutes=65))

    # A day later, at 12:10 in Amsterdam: Ada is usually around at 11:00 there.
    worker.tick(now=T0 + timedelta(days=1, minutes=70))
    waiting = journey_of(engine, "abandoned_cart_email")
    assert len(smtp.messages) == 1
    assert waiting.due_at.replace(tzinfo=UTC) == T0 + timedelta(days=2)

    worker.tick(now=T0 + timedelta(days=2))

    assert [m["Subject"] for m in smtp.messages] == [
        "Ada, your cart is waiting",
        "Still thinking it over? Your cart is saved",
    ]
    assert journey_of(engine, "abandoned_cart_email").status == "done"


def test_abandoned_cart_without_consent_records_why_nothing_was_sent(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None
) -> None:
    worker = CampaignWorker(engine, abandon_cart(engine), folder=shipped)

    worker.tick(now=T0 + timedelta(minutes=65))

    assert smtp.messages == []
    [send] = sends_of(engine, "abandoned_cart_email")
    assert (send.status, send.reason) == ("stopped", "no consent for email_marketing")


def test_quiet_hours_put_the_mail_off_to_the_morning_in_the_shoppers_zone(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None
) -> None:
    late = T0 + timedelta(hours=11)  # 22:00 in Amsterdam
    client = apply(
        engine,
        identify(late),
        event(1, late, "Product Added", sku="MH01", quantity=1),
    )
    consent(engine)
    worker = CampaignWorker(engine, client, folder=shipped)

    worker.tick(now=late + timedelta(minutes=61))
    assert smtp.messages == []
    # 08:00 in Amsterdam (summer time) is 06:00 UTC.
    morning = datetime(2025, 6, 3, 6, 0, tzinfo=UTC)
    assert (
        journey_of(engine, "abandoned_cart_email").due_at.replace(tzinfo=UTC) == morning
    )

    worker.tick(now=morning)

    assert len(smtp.messages) == 1


def test_a_restarted_worker_delivers_a_pending_send_once(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None
) -> None:
    client = abandon_cart(engine)
    consent(engine)
    now = T0 + timedelta(minutes=65)
    with Session(engine) as session:
        ids = [profiles.get_by_ref_or_raise(session, "anonymous_id:v-1").id]
        journeys.evaluate(session, ids, now=now, folder=shipped)
        journeys.run_due(session, now=now, folder=shipped)
    # The worker stopped here: the send is written, not delivered.
    assert [s.status for s in sends_of(engine, "abandoned_cart_email")] == ["pending"]

    for _ in range(3):
        CampaignWorker(engine, client, folder=shipped).tick(now=now)

    assert len(smtp.messages) == 1
    [send] = sends_of(engine, "abandoned_cart_email")
    assert send.status == "sent"
    assert smtp.messages[0]["Message-ID"] == f"<{send.id}@example.com>"


def test_a_mail_server_that_is_away_is_tried_again_later(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from core.settings import get_settings

    client = abandon_cart(engine)
    consent(engine)
    worker = CampaignWorker(engine, client, folder=shipped)
    real_port = get_settings().campaigns.smtp.port
    monkeypatch.setenv("CDP_CAMPAIGNS__SMTP__PORT", str(free_port()))
    get_settings.cache_clear()
    now = T0 + timedelta(minutes=65)

    worker.tick(now=now)
    [send] = sends_of(engine, "abandoned_cart_email")
    assert (send.status, send.attempts) == ("pending", 1)
    assert "could not be reached" in send.reason

    monkeypatch.setenv("CDP_CAMPAIGNS__SMTP__PORT", str(real_port))
    get_settings.cache_clear()
    worker.tick(now=now + timedelta(seconds=30))  # before the retry is due
    assert smtp.messages == []
    worker.tick(now=now + timedelta(minutes=2))

    assert len(smtp.messages) == 1
    assert [s.status for s in sends_of(engine, "abandoned_cart_email")] == ["sent"]


def test_one_click_unsubscribe_withdraws_consent_and_stops_the_last_call(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None,
    client: TestClient,
) -> None:  # fmt: skip
    worker = CampaignWorker(engine, abandon_cart(engine), folder=shipped)
    consent(engine)
    worker.tick(now=T0 + timedelta(minutes=65))
    link = smtp.messages[0]["List-Unsubscribe"].strip("<>")

    answer = client.post(link.removeprefix("http://shop.test"))
    worker.tick(now=T0 + timedelta(days=2))

    assert answer.status_code == 200
    assert len(smtp.messages) == 1
    last = sends_of(engine, "abandoned_cart_email")[-1]
    assert (last.status, last.reason) == ("stopped", "no consent for email_marketing")


def test_control_group_profiles_run_the_journey_and_receive_nothing(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None
) -> None:
    path = shipped.folder / "abandoned_cart_email.yml"
    path.write_text(
        path.read_text().replace("control_share: 0.0", "control_share: 0.5")
    )
    worker = CampaignWorker(engine, abandon_cart(engine), folder=shipped)
    profile_id = consent(engine)
    from campaigns.service import in_control_group

    worker.tick(now=T0 + timedelta(minutes=65))

    held = in_control_group(shipped.get("abandoned_cart_email"), profile_id)  # type: ignore[arg-type]
    [send] = sends_of(engine, "abandoned_cart_email")
    assert send.status == ("control" if held else "sent")
    assert len(smtp.messages) == (0 if held else 1)


def test_welcome_series_checks_for_an_order_before_its_second_mail(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None,
    recommender,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    client = apply(engine, identify(T0), event(1, T0, "Signed Up"))
    consent(engine)
    worker = CampaignWorker(
        engine, client, folder=shipped, recommender=lambda: recommender
    )

    worker.tick(now=T0 + timedelta(minutes=1))
    assert [m["Subject"] for m in smtp.messages] == ["Welcome to Demo Shop, Ada"]
    apply(
        engine,
        event(2, T0 + timedelta(days=1), "Order Completed", order_id="o-9",
              total=30.0, products=[{"sku": "MH01"}]),
    )  # fmt: skip
    worker.tick(now=T0 + timedelta(days=3, minutes=2))

    assert len(smtp.messages) == 1
    ended = journey_of(engine, "welcome_series")
    assert (ended.status, ended.reason) == ("exited", "step 3: check not met")


def test_back_in_stock_mails_who_viewed_the_product_and_not_who_bought_it(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None
) -> None:
    from catalog import service as catalog
    from catalog.models import StockUpdate

    client = apply(
        engine, identify(T0),
        event(1, T0, "Product Viewed", sku="MH03"),
    )  # fmt: skip
    consent(engine)
    worker = CampaignWorker(engine, client, folder=shipped)
    with Session(engine) as session:
        catalog.set_stock(session, "MH03", StockUpdate(qty=0))
    worker.tick(now=T0 + timedelta(hours=1))
    with Session(engine) as session:
        catalog.set_stock(session, "MH03", StockUpdate(qty=5))

    worker.tick(now=T0 + timedelta(hours=2))
    worker.tick(now=T0 + timedelta(hours=3))  # the change is read once

    [mail] = smtp.messages
    assert mail["Subject"] == "Bruno Compete Hoodie is back"


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver: the first post fails with 503, the next ones succeed."""

    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), body))
        self.send_response(503 if len(Hook.received) == 1 else 200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/cdp"
    server.shutdown()
    server.server_close()


def test_webhook_is_signed_and_retried_after_a_5xx(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None, hook: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from campaigns.delivery import sign
    from catalog import service as catalog

    path = shipped.folder / "price_drop_webhook.yml"
    text = path.read_text().replace("status: paused", "status: active")
    path.write_text(text.replace("https://crm.example.com/hooks/cdp", hook))
    monkeypatch.setenv("CDP_WEBHOOK_SECRET", "s3cret")
    client = apply(engine, identify(T0), event(1, T0, "Product Viewed", sku="MH04"))
    consent(engine)
    worker = CampaignWorker(engine, client, folder=shipped)
    with Session(engine) as session:
        catalog.import_products(
            session, [ProductCreate(**{**_product(session, "MH04"), "price": 40.0})]
        )

    worker.tick(now=T0 + timedelta(hours=1))
    worker.tick(now=T0 + timedelta(hours=1, minutes=2))

    assert len(Hook.received) == 2
    headers, body = Hook.received[1]
    assert headers["X-CDP-Signature"] == sign(
        "s3cret", headers["X-CDP-Timestamp"], body
    )
    assert headers["Idempotency-Key"] == Hook.received[0][0]["Idempotency-Key"]
    sent = json.loads(body)
    assert sent["campaign"] == "price_drop_webhook"
    assert sent["products"] == ["MH04"]
    assert sent["message"] == "Frankie Sweatshirt now USD 40.00"
    [send] = sends_of(engine, "price_drop_webhook")
    assert (send.status, send.attempts) == ("sent", 2)


def _product(session: Session, sku: str) -> dict[str, Any]:
    product = session.get(Product, sku)
    assert product is not None
    return product.model_dump(include=set(ProductCreate.model_fields))


def test_pausing_a_campaign_holds_its_pending_mail_until_it_runs_again(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None
) -> None:
    client = abandon_cart(engine)
    consent(engine)
    now = T0 + timedelta(minutes=65)
    with Session(engine) as session:
        ids = [profiles.get_by_ref_or_raise(session, "anonymous_id:v-1").id]
        journeys.evaluate(session, ids, now=now, folder=shipped)
        journeys.run_due(session, now=now, folder=shipped)
    path = shipped.folder / "abandoned_cart_email.yml"
    active = path.read_text()
    path.write_text(active.replace("kind: hybrid", "status: paused\nkind: hybrid"))
    worker = CampaignWorker(engine, client, folder=shipped)

    worker.tick(now=now + timedelta(minutes=1))
    held = [s.status for s in sends_of(engine, "abandoned_cart_email")]
    path.write_text(active)
    worker.tick(now=now + timedelta(minutes=2))

    assert (held, len(smtp.messages)) == (["pending"], 1)


def test_smart_email_campaign_mails_each_loyal_customer_once(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None,
    recommender,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    path = shipped.folder / "loyal_thank_you_email.yml"
    path.write_text(
        path.read_text().replace('quiet_hours: {start: "21:00", end: "08:00"}', "")
    )
    now = datetime.now(UTC)
    orders = [
        event(n, now - timedelta(days=20 * n + 1), "Order Completed",
              order_id=f"o-{n}", total=40.0, products=[{"sku": "MH01"}])
        for n in range(4)
    ]  # fmt: skip
    client = apply(engine, identify(now - timedelta(days=100)), *orders)
    consent(engine)
    # Someone else, with one order: not loyal.
    apply(
        engine,
        {**identify(now, email="bo@example.com"), "anonymousId": "v-2",
         "messageId": "m-id-2"},
        {**event(9, now - timedelta(days=3), "Order Completed", order_id="o-9",
                 total=10.0), "anonymousId": "v-2"},
    )  # fmt: skip
    worker = CampaignWorker(
        engine, client, folder=shipped, recommender=lambda: recommender
    )
    # The campaign starts after these customers were last active: only the sweep
    # of its audience can find them.
    client.delete(touched_key())

    worker.tick(now=now)
    worker.tick(now=now + timedelta(days=2))

    loyal = [
        m for m in smtp.messages if m["Subject"].startswith(("Thank you", "Early"))
    ]
    assert [m["To"] for m in loyal] == ["ada@example.com"]
    [journey] = [j for j in _journeys(engine) if j.campaign == "loyal_thank_you_email"]
    assert (journey.status, journey.detail) == ("done", "in the audience")


def _journeys(engine: Engine) -> list[CampaignJourney]:
    with Session(engine) as session:
        return list(session.exec(select(CampaignJourney)))


@pytest.mark.parametrize(
    ("first_name", "subject"),
    [
        ("Zoë O'Brien & Co", "Zoë O'Brien & Co, your cart is waiting"),
        (None, "Hello, your cart is waiting"),
        # A line break in a trait cannot start a header of its own.
        ("Eve\r\nBcc: victim@example.org",
         "Eve Bcc: victim@example.org, your cart is waiting"),
    ],
)  # fmt: skip
def test_subject_is_one_line_of_plain_text_whatever_the_trait_holds(
    engine: Engine, smtp: Sink, shipped: CampaignFolder, stocked: None,
    first_name: str | None, subject: str,
) -> None:  # fmt: skip
    client = apply(
        engine,
        identify(T0, first_name=first_name),
        event(1, T0 + timedelta(minutes=1), "Product Added", sku="MH01", quantity=1),
    )
    consent(engine)

    CampaignWorker(engine, client, folder=shipped).tick(now=T0 + timedelta(hours=2))

    [mail] = smtp.messages
    assert mail["Subject"] == subject
    assert mail["Bcc"] is None
    assert mail["To"] == "ada@example.com"
