"""The bandit per context (device, part of the day, weather band) and results
broken down by it."""

import random
from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from campaigns import bandit, service
from campaigns.definitions import CampaignFolder
from campaigns.models import CampaignImpression, CampaignOutcome
from profiles.models import Profile
from tests.campaigns.conftest import campaign_text, make_profile
from tests.campaigns.test_service import NOON as T0

Folder = Callable[..., CampaignFolder]


def shown(
    session: Session, campaign: str, variant: str, device: str, n: int, clicks: int
) -> None:
    for i in range(n):
        impression = CampaignImpression(
            id=f"{variant}-{device}-{i}", campaign=campaign, variant=variant,
            profile_id="p", channel="website", placement="home", device=device,
        )  # fmt: skip
        session.add(impression)
        if i < clicks:
            session.add(
                CampaignOutcome(impression_id=impression.id, campaign=campaign,
                                kind="click", ref=impression.id, at=T0)
            )  # fmt: skip
    session.commit()


def test_bandit_learns_which_variant_works_on_which_device(
    session: Session,
    folder,  # type: ignore[no-untyped-def]
) -> None:
    loaded = folder(**{"c.yml": campaign_text()})
    campaign = loaded.get("test")
    shown(session, "test", "a", "mobile", 60, 30)
    shown(session, "test", "b", "mobile", 60, 3)
    shown(session, "test", "a", "desktop", 60, 3)
    shown(session, "test", "b", "desktop", 60, 30)
    rng = random.Random(7)

    def picks(device: str) -> set[str]:
        context = {"device": device, "daypart": None, "weather_band": None}
        arms = service.arms(session, campaign, context)  # type: ignore[arg-type]
        return {bandit.choose(arms, rng) for _ in range(50)}

    overall = service.arms(session, campaign)  # type: ignore[arg-type]
    assert [(a.impressions, a.rewarded) for a in overall] == [(120, 33), (120, 33)]
    assert picks("mobile") == {"a"}
    assert picks("desktop") == {"b"}


def test_a_context_seen_rarely_follows_the_overall_rate() -> None:
    overall = bandit.Arm("a", impressions=998, rewarded=99)  # 10% with the prior
    nothing_here = bandit.Arm("a")

    belief = bandit.in_context(overall, nothing_here)

    assert belief.impressions == bandit.PRIOR_WEIGHT
    assert belief.rewarded == pytest.approx(1.0)


def test_profile_without_context_is_served_and_reported_as_unknown(
    session: Session,
    folder,  # type: ignore[no-untyped-def]
) -> None:
    loaded = folder(**{"c.yml": campaign_text()})
    profile: Profile = make_profile(session)

    service.personalise(session, profile, slot="home", folder=loaded, now=T0)
    results = service.list_results(session, loaded.get("test"), now=T0)  # type: ignore[arg-type]

    [row] = results.by_context["device"]
    assert (row.value, row.impressions) == ("unknown", 1)
    stored = session.exec(select(CampaignImpression)).one()
    assert (stored.device, stored.weather_band) == (None, None)


def test_an_order_without_a_click_rewards_the_variant_once(
    session: Session, folder: Folder
) -> None:
    loaded = folder(**{"c.yml": campaign_text()})
    shown(session, "test", "a", "mobile", 10, 0)
    for i in range(4):  # four mails acted on in the shop, one also clicked
        session.add(
            CampaignOutcome(impression_id=f"a-mobile-{i}", campaign="test",
                            kind="conversion", ref=f"o-{i}", at=T0)
        )  # fmt: skip
    session.add(
        CampaignOutcome(impression_id="a-mobile-0", campaign="test", kind="click",
                        ref="a-mobile-0", at=T0)
    )  # fmt: skip
    session.commit()

    arms = service.arms(session, loaded.get("test"))  # type: ignore[arg-type]

    assert [(a.variant, a.impressions, a.rewarded) for a in arms] == [
        ("a", 10, 4), ("b", 0, 0),
    ]  # fmt: skip
