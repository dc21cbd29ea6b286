"""The weather where a profile is, as an input to its recommendations."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import bearer
from tests.context.conftest import IP_MADRID, IP_STOCKHOLM, UA_IPHONE, FakeOpenMeteo
from tests.context.test_service import T0, apply, seen


@pytest.fixture
def shop_api(api: TestClient, recommender) -> TestClient:  # type: ignore[no-untyped-def]
    api.app.state.recommender = recommender  # type: ignore[attr-defined]
    return api


def test_recommendations_lift_summer_clothes_where_it_is_a_hot_day(
    shop_api: TestClient, engine: Engine, open_meteo: FakeOpenMeteo
) -> None:
    open_meteo.today = True  # Madrid's hot days, replayed as today
    apply(
        engine,
        seen("m-1", T0, IP_MADRID, UA_IPHONE, visitor="madrid"),
        seen("m-2", T0, IP_STOCKHOLM, UA_IPHONE, visitor="stockholm"),
    )

    def reasons(visitor: str) -> list[str]:
        response = shop_api.get(
            "/v1/recommendations", headers=bearer(),
            params={"profile": f"anonymous_id:{visitor}", "limit": 6},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return [item["reason"] for item in response.json()["items"]]

    assert all(r.endswith("; suits the hot day") for r in reasons("madrid")[:3])
    # Stockholm's record is of a cold snap in January.
    cold = reasons("stockholm")
    assert cold[0].endswith("; suits the cold snap and freezing weather")
    assert not any("hot day" in r for r in cold)
