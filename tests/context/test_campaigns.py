"""Context in campaigns: content that changes on a hot day where the visitor is,
and results broken down by context."""

import random
from datetime import datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from campaigns import service
from campaigns.definitions import CampaignFolder
from profiles import service as profiles
from tests.context.conftest import IP_MADRID, IP_STOCKHOLM, UA_IPHONE, UA_WINDOWS_CHROME
from tests.context.test_service import HOT_AFTERNOON, T0, apply, seen


def serve(
    session: Session, visitor: str, folder: CampaignFolder, recommender, now: datetime
):  # type: ignore[no-untyped-def]
    profile = profiles.get_by_ref_or_raise(session, f"anonymous_id:{visitor}")
    return service.personalise(
        session, profile, slot="home", folder=folder, recommender=recommender,
        now=now, rng=random.Random(1),
    )  # fmt: skip


@pytest.mark.usefixtures("context_env", "stocked")
def test_hot_day_campaign_changes_its_content_where_it_is_hot(
    engine: Engine,
    shipped: CampaignFolder,
    recommender,  # type: ignore[no-untyped-def]
) -> None:
    apply(
        engine,
        seen("m-1", T0, IP_MADRID, UA_IPHONE, visitor="madrid"),
        seen("m-2", T0, IP_STOCKHOLM, UA_WINDOWS_CHROME, visitor="stockholm"),
    )

    with Session(engine) as session:
        hot = serve(session, "madrid", shipped, recommender, HOT_AFTERNOON)
        cold = serve(session, "stockholm", shipped, recommender, HOT_AFTERNOON)
        results = service.list_results(
            session,
            shipped.get("hot_day_summer"),
            now=HOT_AFTERNOON,  # type: ignore[arg-type]
        )

    assert (hot.campaign, hot.variant) == ("hot_day_summer", "summer")
    assert "Stay cool" in (hot.html or "")
    assert (cold.campaign, cold.variant) == ("hot_day_summer", "everyday")
    by_band = {r.value: r.impressions for r in results.by_context["weather_band"]}
    by_device = {r.value: r.impressions for r in results.by_context["device"]}
    # Stockholm's record is of January: it says nothing of a July afternoon.
    assert by_band == {"hot": 1, "unknown": 1}
    assert by_device == {"mobile": 1, "desktop": 1}
