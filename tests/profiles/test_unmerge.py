"""A merge undone: both people come back as if the merge had never happened."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from events.worker import Worker
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish


def snapshot(client: TestClient, ref: str) -> dict[str, Any]:
    body = client.get(f"/v1/profiles/{ref}", headers=bearer()).json()
    events = client.get(f"/v1/profiles/{ref}/events", headers=bearer()).json()["items"]
    return {
        "id": body["id"],
        "traits": body["traits"],
        "identities": sorted((i["type"], i["value"]) for i in body["identities"]),
        "events": sorted(e["message_id"] for e in events),
        "orders": sorted(o["order_id"] for o in body["orders"]),
        "computed": {k: body["computed"][k] for k in ("order_count", "revenue")},
        "consents": [(c["purpose"], c["status"]) for c in body["consents"]],
    }


def test_unmerge_restores_both_profiles_as_they_were_before_the_merge(
    client: TestClient, engine: Engine
) -> None:
    # Ann browses and buys as a guest on her phone; a shop clerk later types her
    # email into Bob's account by mistake, which merges the two.
    ann = [
        envelope("a-1", anonymousId="ann-phone", userId=None),
        envelope("a-2", anonymousId="ann-phone", userId=None, event="Order Completed",
                 properties={"order_id": "o-ann", "total": 30}),
        envelope("a-3", anonymousId="ann-phone", userId=None, type="identify",
                 event=None, traits={"email": "ann@example.com", "city": "Leipzig"}),
    ]  # fmt: skip
    bob = [
        envelope("b-1", anonymousId=None, userId="bob", type="identify", event=None,
                 traits={"first_name": "Bob", "city": "Utrecht"}),
        envelope("b-2", anonymousId=None, userId="bob", event="Order Completed",
                 properties={"order_id": "o-bob", "total": 80}),
    ]  # fmt: skip
    drain(Worker(engine, publish(*ann, *bob)))
    client.post(
        "/v1/profiles/customer_id:bob/consents",
        json={"purpose": "email_marketing", "status": "granted"}, headers=bearer(),
    )  # fmt: skip
    ann_before = snapshot(client, "anonymous_id:ann-phone")
    bob_before = snapshot(client, "customer_id:bob")

    mistake = envelope("x-1", anonymousId=None, userId="bob", type="identify",
                       event=None, traits={"email": "ann@example.com"})  # fmt: skip
    drain(Worker(engine, publish(mistake)))
    merged = snapshot(client, "customer_id:bob")
    assert merged["id"] == snapshot(client, "anonymous_id:ann-phone")["id"]
    survivor, other = (
        merged["id"],
        ({ann_before["id"], bob_before["id"]} - {merged["id"]}).pop(),
    )

    response = client.post(
        f"/v1/profiles/{survivor}/unmerge",
        json={"other_profile_id": other},
        headers=bearer(),
    )

    assert response.status_code == 200, response.text
    ann_after = snapshot(client, "anonymous_id:ann-phone")
    bob_after = snapshot(client, "customer_id:bob")
    assert ann_after == ann_before
    # Bob keeps the event that caused the merge, and nothing of Ann's.
    assert bob_after == {**bob_before, "events": sorted([*bob_before["events"], "x-1"])}


def test_unmerge_of_profiles_never_merged_is_a_404(
    client: TestClient, engine: Engine
) -> None:
    drain(
        Worker(
            engine,
            publish(
                envelope("m-1", userId="c-1"),
                envelope("m-2", userId="c-2", anonymousId="v-2"),
            ),
        )
    )
    other = client.get("/v1/profiles/customer_id:c-2", headers=bearer()).json()["id"]

    response = client.post(
        "/v1/profiles/customer_id:c-1/unmerge",
        json={"other_profile_id": other},
        headers=bearer(),
    )

    assert response.status_code == 404
    assert response.json()["detail"][0]["type"] == "merge_not_found"
