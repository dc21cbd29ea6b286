"""The context route, and the request's address and user agent filling in what a
tracked message lacks."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from context.models import ProfileContext
from core.redis import get_redis
from events.worker import Worker
from tests.conftest import basic, bearer
from tests.context.conftest import IP_MADRID, UA_IPHONE
from tests.events.test_worker import drain


def apply_all(engine: Engine) -> None:
    drain(Worker(engine, get_redis()))


def test_track_without_ip_or_agent_takes_the_requests(
    api: TestClient, engine: Engine
) -> None:
    response = api.post(
        "/v1/track", headers=basic(),
        json={"anonymousId": "v-1", "event": "Product Viewed", "properties": {}},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    apply_all(engine)

    context = api.get("/v1/profiles/anonymous_id:v-1/context", headers=bearer())

    assert context.status_code == 200, context.text
    body = context.json()
    assert body["location"]["city"] == "Stockholm"
    assert [(d["type"], d["os"], d["browser"]) for d in body["devices"]] == [
        ("mobile", "Android", "Chrome")
    ]
    assert body["facts"]["timezone"] == "Europe/Stockholm"


def test_batch_keeps_the_ip_and_agent_a_message_carries(
    api: TestClient, engine: Engine
) -> None:
    message = {
        "type": "track", "anonymousId": "v-2", "event": "Product Viewed",
        "context": {"ip": IP_MADRID, "userAgent": UA_IPHONE},
    }  # fmt: skip
    response = api.post("/v1/batch", headers=basic(), json={"batch": [message]})
    assert response.status_code == 200, response.text
    apply_all(engine)

    body = api.get("/v1/profiles/anonymous_id:v-2/context", headers=bearer()).json()

    assert body["location"]["city"] == "Madrid"
    assert body["main_device"] == "mobile"
    assert body["devices"][0]["os"] == "iOS"


def test_read_context_needs_the_admin_token_and_a_known_profile(
    api: TestClient,
) -> None:
    anonymous = api.get("/v1/profiles/anonymous_id:v-1/context")
    unknown = api.get("/v1/profiles/anonymous_id:nobody/context", headers=bearer())

    assert anonymous.status_code == 401, anonymous.text
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["detail"][0]["type"] == "profile_not_found"


def test_the_assistants_client_reads_the_context_and_none_for_nobody(
    api: TestClient, engine: Engine
) -> None:
    from assistant.actions.platform import PlatformClient

    api.post(
        "/v1/page", headers=basic(), json={"anonymousId": "v-3", "name": "Home"}
    ).raise_for_status()
    apply_all(engine)
    platform = PlatformClient(base_url="http://testserver", http=api)

    found = platform.context("anonymous_id:v-3")

    assert found is not None
    assert (found["facts"]["country"], found["facts"]["device"]) == ("SE", "mobile")
    assert platform.context("anonymous_id:nobody") is None


def test_erasure_removes_the_profiles_context(api: TestClient, engine: Engine) -> None:
    api.post(
        "/v1/page", headers=basic(), json={"anonymousId": "v-4", "name": "Home"}
    ).raise_for_status()
    apply_all(engine)
    assert api.get("/v1/profiles/anonymous_id:v-4/context", headers=bearer()).json()[
        "location"
    ]

    erased = api.delete("/v1/profiles/anonymous_id:v-4", headers=bearer())

    assert erased.status_code == 200, erased.text
    with Session(engine) as session:
        assert session.exec(select(ProfileContext)).all() == []
