"""Stage and retention kept current by the worker, with history, funnel and grid."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service as catalog
from events.worker import Worker
from segments import service as segments
from segments.models import ProfileState, StateChange
from tests.conftest import DEMO_CATALOG, bearer
from tests.events.test_worker import drain, envelope, publish

NOW = datetime.now(UTC)


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def order(message_id: str, days_ago: float, visitor: str = "v-1") -> dict:
    placed = {"order_id": message_id, "total": 50.0, "products": [{"sku": "MH01"}]}
    return envelope(message_id, event="Order Completed", anonymousId=visitor,
                    timestamp=at(days_ago), properties=placed)  # fmt: skip


def view(message_id: str, sku: str, days_ago: float = 0.01) -> dict:
    return envelope(message_id, anonymousId="v-1", timestamp=at(days_ago),
                    properties={"sku": sku})  # fmt: skip


def state_of(client: TestClient) -> dict:
    response = client.get("/v1/profiles/anonymous_id:v-1/state", headers=bearer())
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_worker_moves_a_shopper_through_the_stages_and_keeps_the_history(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session:
        catalog.import_file(session, DEMO_CATALOG, fmt="magento")

    drain(Worker(engine, publish(view("m-1", "WJ06", 0.05))))
    first = state_of(client)["state"]
    drain(Worker(engine, publish(view("m-2", "WJ04", 0.04), view("m-3", "WJ01", 0.03))))
    second = state_of(client)["state"]
    added = envelope("m-4", event="Product Added", anonymousId="v-1",
                     timestamp=at(0.02), properties={"sku": "WJ04"})  # fmt: skip
    drain(Worker(engine, publish(added)))
    third = state_of(client)["state"]
    drain(Worker(engine, publish(order("m-5", 0.01))))
    report = state_of(client)

    assert first["stage"] == "orientation"
    assert (second["stage"], second["stage_reason"]) == (
        "comparison", "viewed 3 products in Women/Tops/Jackets"
    )  # fmt: skip
    assert (third["stage"], third["stage_reason"]) == ("decision", "in the cart: WJ04")
    assert report["state"]["stage"] == "evaluation"
    assert report["state"]["retention"] == "one_time"
    moves = [(c["kind"], c["from_value"], c["to_value"]) for c in report["history"]]
    assert moves == [
        ("stage", None, "orientation"), ("stage", "orientation", "comparison"),
        ("stage", "comparison", "decision"), ("stage", "decision", "evaluation"),
        ("retention", None, "one_time"),
    ]  # fmt: skip


def test_the_retention_grid_shows_a_loyal_customer_turning_red_alert(
    client: TestClient, engine: Engine
) -> None:
    # Four orders in the last three months: loyal.
    drain(Worker(engine, publish(*[order(f"o-{n}", 100 - n * 20) for n in range(4)])))
    loyal = state_of(client)["state"]
    # A hundred days later, with no new order, the daily refresh moves them.
    with Session(engine) as session:
        [profile_id] = session.exec(select(ProfileState.profile_id)).all()
        segments.refresh(session, [profile_id], now=NOW + timedelta(days=100))

    grid = client.get("/v1/retention", params={"days": 1}, headers=bearer()).json()
    funnel = client.get("/v1/funnel", headers=bearer()).json()

    assert (loyal["retention"], loyal["retention_reason"]) == (
        "loyal", "4 orders, the last 40 days ago"
    )  # fmt: skip
    assert grid["cells"]["red_alert"] == 1
    assert grid["cells"]["loyal"] == 0
    assert grid["movements"] == [
        {"from_value": "loyal", "to_value": "red_alert", "profiles": 1}
    ]
    assert sum(funnel["stages"].values()) == 1


def test_erasure_takes_the_stage_history_with_it(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(view("m-1", "WJ06"))))
    assert state_of(client)["history"]

    erased = client.delete("/v1/profiles/anonymous_id:v-1", headers=bearer())

    assert erased.status_code == 200, erased.text
    with Session(engine) as session:
        assert session.exec(select(StateChange)).all() == []
        assert session.exec(select(ProfileState)).all() == []
