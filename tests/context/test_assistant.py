"""The weather where the shopper is, in what the assistant says."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from assistant.actions.platform import PlatformClient
from assistant.actions.recommend import ActionRecommend
from catalog import service as catalog
from tests.assistant.test_actions import make_tracker, run
from tests.conftest import DEMO_CATALOG
from tests.context.conftest import IP_MADRID, UA_IPHONE, FakeOpenMeteo
from tests.context.test_service import T0, apply, seen


def test_assistant_recommends_for_the_hot_day_where_the_shopper_is(
    api: TestClient, engine: Engine, open_meteo: FakeOpenMeteo,
    recommender,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    api.app.state.recommender = recommender  # type: ignore[attr-defined]
    with Session(engine) as session:
        catalog.import_file(session, DEMO_CATALOG, fmt="magento")
    open_meteo.today = True  # Madrid's hot day, replayed as today
    apply(engine, seen("m-1", T0, IP_MADRID, UA_IPHONE, visitor="madrid"))
    platform = PlatformClient(base_url="http://testserver", http=api)

    messages, _ = run(
        ActionRecommend(platform),
        make_tracker("what would you recommend?", intent="recommend", sender="madrid"),
    )

    why = messages[-1]["text"]
    assert why.startswith("Why these:")
    assert why.count("suits the hot day") == 3
