"""Personalisation under guards, outcomes read from events, and results."""

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from campaigns import service
from campaigns.definitions import CampaignFolder
from campaigns.models import CampaignImpression, CampaignSkip
from core.settings import get_settings
from events.worker import Worker
from profiles import service as profiles
from profiles.models import ConsentCreate, ConsentStatus, Event, Profile
from tests.campaigns.conftest import campaign_text, make_profile
from tests.conftest import basic, bearer
from tests.events.test_worker import drain, envelope, publish

NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
Folder = Callable[..., CampaignFolder]


def serve(session: Session, loaded: CampaignFolder, profile, **kw):  # type: ignore[no-untyped-def]
    return service.personalise(
        session, profile, slot="home", folder=loaded,
        rng=kw.pop("rng", random.Random(3)), now=kw.pop("now", NOON), **kw,
    )  # fmt: skip


def test_personalise_delivers_escaped_content_and_records_it_once(
    session: Session, folder: Folder
) -> None:
    loaded = folder(**{"c.yml": campaign_text()})
    profile = make_profile(session, first_name="<b>Ada</b>")

    first = serve(session, loaded, profile, impression_id="page-0001")
    again = serve(session, loaded, profile, impression_id="page-0001")

    assert first.campaign == "test"
    assert first.variant in ("a", "b")
    assert "<b>" not in (first.html or "")
    assert (again.variant, again.impression_id) == (first.variant, "page-0001")
    assert len(session.exec(select(CampaignImpression)).all()) == 1
    viewed = profiles.list_events(session, profile, name="Promotion Viewed")
    assert [e.properties["content_id"] for e in viewed] == ["page-0001"]


@pytest.mark.parametrize(
    ("guards", "reason"),
    [
        ("  consent: website_personalisation",
         "no consent for website_personalisation"),
        ("  quiet_hours: {start: '21:00', end: '08:00'}",
         "quiet hours 21:00-08:00 in Asia/Tokyo (it is 21:00 there)"),
        ("  suppression: staff", "on the suppression list staff"),
        ("  max_per_day: 1", "frequency cap: 1 of 1 per day on website already"),
    ],
)  # fmt: skip
def test_personalise_guard_stops_the_delivery_with_its_reason(
    session: Session, folder: Folder, guards: str, reason: str
) -> None:
    loaded = folder(**{"c.yml": campaign_text(guards=guards)})
    profile = make_profile(session, timezone="Asia/Tokyo")
    service.suppress(session, "staff", profile)
    if "max_per_day" in guards:
        assert serve(session, loaded, profile).html is not None

    found = serve(session, loaded, profile)

    assert found.html is None
    assert [(s.campaign, s.reason) for s in found.stopped] == [("test", reason)]


def test_personalise_granted_consent_lets_the_delivery_through(
    session: Session, folder: Folder
) -> None:
    guards = "  consent: website_personalisation"
    loaded = folder(**{"c.yml": campaign_text(guards=guards)})
    profile = make_profile(session)
    profiles.record_consent(
        session, profile,
        ConsentCreate(purpose="website_personalisation", status=ConsentStatus.granted),
    )  # fmt: skip

    assert serve(session, loaded, profile).html is not None


def test_control_group_split_is_stable_and_close_to_the_share(folder: Folder) -> None:
    loaded = folder(**{"c.yml": campaign_text(guards="  control_share: 0.2")})
    [campaign] = loaded.campaigns()
    ids = [f"profile-{n}" for n in range(5000)]

    held = [p for p in ids if service.in_control_group(campaign, p)]

    assert 0.18 < len(held) / len(ids) < 0.22
    assert held == [p for p in ids if service.in_control_group(campaign, p)]


def test_personalise_control_member_sees_nothing_and_is_recorded(
    session: Session, folder: Folder
) -> None:
    loaded = folder(**{"c.yml": campaign_text(guards="  control_share: 0.5")})
    [campaign] = loaded.campaigns()
    profile = make_profile(session)
    while not service.in_control_group(campaign, profile.id):
        profile = make_profile(session)

    found = serve(session, loaded, profile)

    assert (found.control, found.html) == (True, None)
    [impression] = session.exec(select(CampaignImpression)).all()
    assert impression.control
    assert profiles.list_events(session, profile, name="Promotion Viewed") == []


def test_personalise_template_error_skips_that_message_with_its_line(
    session: Session, folder: Folder
) -> None:
    text = campaign_text().replace('template: "<p>Hi</p>"', 'template: "{{ 1/0 }}"')
    text = text.replace("profile.traits.first_name", "profile.traits.nickname")
    loaded = folder(**{"c.yml": text})
    profile = make_profile(session)

    found = serve(session, loaded, profile)

    assert found.html is None
    [stop] = found.stopped
    assert stop.reason.startswith("template failed: c.yml, line ")
    [skip] = session.exec(select(CampaignSkip)).all()
    assert skip.reason.startswith("c.yml, line ")
    assert session.exec(select(CampaignImpression)).all() == []


def _event(profile_id: str, message_id: str, name: str, at: datetime, **props) -> Event:  # type: ignore[no-untyped-def]
    return Event(message_id=message_id, profile_id=profile_id, type="track",
                 name=name, properties=props, timestamp=at)  # fmt: skip


def test_results_count_outcomes_and_compute_uplift_against_control(
    session: Session, folder: Folder
) -> None:
    loaded = folder(**{"c.yml": campaign_text(guards="  control_share: 0.5")})
    [campaign] = loaded.campaigns()
    treated, held = [], []
    while len(treated) < 4 or len(held) < 2:
        profile = make_profile(session)
        group = held if service.in_control_group(campaign, profile.id) else treated
        if len(group) < (2 if group is held else 4):
            group.append(profile)
    shown = {p.id: serve(session, loaded, p) for p in [*treated, *held]}
    later = NOON + timedelta(hours=1)
    first = treated[0]
    session.add_all([
        _event(first.id, "c1", "Promotion Clicked", later,
               promotion_id=shown[first.id].impression_id),
        _event(first.id, "c2", "Promotion Clicked", later,
               promotion_id=shown[first.id].impression_id),
        _event(first.id, "o1", "Order Completed", later, order_id="1", total=40.0),
        _event(treated[1].id, "o2", "Order Completed", later, order_id="2", total=10),
        _event(held[0].id, "o3", "Order Completed", later, order_id="3", total=25.0),
        _event(held[1].id, "o4", "Order Completed", NOON + timedelta(days=8),
               order_id="4", total=99.0),
    ])  # fmt: skip
    session.commit()

    results = service.list_results(session, campaign, now=NOON + timedelta(days=9))

    assert (results.impressions, results.profiles, results.control_profiles) == (
        4,
        4,
        2,
    )
    assert (results.clicks, results.conversions, results.revenue) == (1, 3, 75.0)
    # Treated 2 of 4 converted, control 1 of 2 (the 8-day-late order is outside the
    # window): d = 0, and Newcombe's interval for 2/4 - 1/2.
    assert results.uplift is not None
    assert (results.uplift.difference, results.uplift.low, results.uplift.high) == (
        0.0, -0.535610, 0.535610
    )  # fmt: skip
    assert sum(v.impressions for v in results.variants) == 4


def test_uplift_matches_newcombes_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, example (a):
    # 56/70 - 48/80 = 0.2, method 10 interval 0.0524 to 0.3339.
    found = service.uplift(56, 70, 48, 80)

    assert found is not None
    assert (round(found.low, 4), round(found.high, 4)) == (0.0524, 0.3339)
    assert found.difference == 0.2


def test_uplift_stays_inside_what_rates_allow_for_tiny_groups() -> None:
    found = service.uplift(0, 5, 1, 5)

    assert found is not None
    assert -1.0 <= found.low < found.difference < found.high <= 1.0


def test_personalize_serves_the_shipped_example_to_a_profile_built_from_events(
    client: TestClient, engine: Engine
) -> None:
    from catalog import service as catalog
    from tests.conftest import DEMO_CATALOG

    with Session(engine) as session:
        catalog.import_file(session, DEMO_CATALOG, fmt="magento")
    views = [envelope(f"m-{n}", properties={"sku": sku})
             for n, sku in enumerate(["WJ06", "WJ04", "WJ01"])]  # fmt: skip
    drain(Worker(engine, publish(*views)))

    response = client.get(
        "/v1/personalize",
        params={"profile": "anonymous_id:v-1", "slot": "product_page", "sku": "WJ04"},
        headers=basic(),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["campaign"] == "comparison_alternatives"
    assert body["control"] or "<li>" in body["html"]
    listed = {c["id"]: c for c in client.get("/v1/campaigns", headers=bearer()).json()}
    assert listed["comparison_alternatives"]["running"]
    assert listed["comparison_alternatives"]["slot"] == "product_page"
    assert listed["abandoned_cart_email"]["kind"] == "hybrid"
    assert not listed["price_drop_webhook"]["running"]  # shipped paused
    results = client.get(
        "/v1/campaigns/comparison_alternatives/results", headers=bearer()
    )
    assert results.status_code == 200, results.text
    assert results.json()["impressions"] + results.json()["control_profiles"] == 1


def test_personalize_with_a_write_key_refuses_other_identities(
    client: TestClient,
) -> None:
    response = client.get(
        "/v1/personalize", params={"profile": "email:a@b.c", "slot": "home"},
        headers=basic(),
    )  # fmt: skip

    assert response.status_code == 401, response.text


WHEN_CAMPAIGN = """\
id: by_country
name: By country
kind: smart
placement:
  website: {slot: home}
rules:
  trait: first_name
  exists: true
variants:
  - id: dutch
    template: "<p>Hallo</p>"
    when: {trait: country, equals: NL}
  - id: other
    template: "<p>Hello</p>"
    when:
      not: {trait: country, equals: NL}
"""


def test_variant_when_picks_the_content_that_fits_the_profile(
    session: Session, folder: Folder
) -> None:
    loaded = folder(**{"c.yml": WHEN_CAMPAIGN})
    dutch = make_profile(session, country="NL")
    german = make_profile(session, country="DE")

    shown = {
        (p.traits["country"], serve(session, loaded, p, rng=random.Random(n)).variant)
        for p in (dutch, german) for n in range(5)
    }  # fmt: skip

    assert shown == {("NL", "dutch"), ("DE", "other")}


def test_campaign_rules_that_do_not_hold_stop_it_with_the_reason(
    session: Session, folder: Folder
) -> None:
    loaded = folder(**{"c.yml": WHEN_CAMPAIGN})
    profile = Profile(traits={"country": "NL"})
    session.add(profile)
    session.commit()

    found = service.personalise(session, profile, slot="home", folder=loaded, now=NOON)

    assert found.html is None
    assert [(s.campaign, s.reason) for s in found.stopped] == [
        ("by_country", "its rules do not hold")
    ]


@pytest.mark.parametrize(
    ("to", "status"),
    [
        ("/shop/p/wj06", 303),
        ("/shop?sort=price#top", 303),
        ("//evil.example", 422),
        ("/\\evil.example", 422),
        ("/\t/evil.example", 422),
        ("/\n/evil.example", 422),
        ("https://evil.example/", 422),
        ("shop", 422),
    ],
)
def test_click_link_goes_only_to_a_path_on_the_shop(
    client: TestClient, to: str, status: int
) -> None:
    response = client.get(
        "/v1/campaigns/click/unknown-send-0", params={"to": to},
        follow_redirects=False,
    )  # fmt: skip

    assert response.status_code == status, response.text
    if status == 303:
        shop = get_settings().api.storefront_url
        assert response.headers["location"] == shop + to
