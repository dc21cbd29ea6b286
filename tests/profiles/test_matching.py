from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from profiles import matching, service
from profiles.models import Event, IdentityType, MatchStatus, Profile
from tests.conftest import bearer

EMAIL = IdentityType.email


def make_profile(session: Session, email: str, **traits: str) -> Profile:
    """A profile as the worker leaves it after an identify with these traits, with
    one event on its timeline."""
    profile = service.resolve(session, [(EMAIL, email)], source="crm")
    at = datetime.now(UTC)
    service.set_traits(session, profile, traits, at=at)
    event = Event(message_id=f"m-{email}", profile_id="", type="identify", timestamp=at)
    service.add_event(session, profile, event)
    session.commit()
    return profile


@pytest.fixture
def people(engine: Engine) -> dict[str, str]:
    """Two records of one person (typos, same date of birth, different e-mails)
    and two people unlike anyone else; name to profile id."""
    with Session(engine) as session:
        made = {
            "ann": make_profile(
                session, "ann.smith@example.com", first_name="Ann",
                last_name="Smith", date_of_birth="1980-03-14", city="London",
            ),
            "anne": make_profile(
                session, "asmyth80@mail.test", first_name="Anne",
                last_name="Smyth", date_of_birth="1980-03-14", city="Londn",
            ),
            "bob": make_profile(
                session, "bob@jones.test", first_name="Robert", last_name="Jones",
                date_of_birth="1975-11-02", city="Leeds",
            ),
            "carla": make_profile(
                session, "carla@mendes.test", first_name="Carla",
                last_name="Mendes", date_of_birth="1975-11-02", city="Porto",
            ),
        }  # fmt: skip
        return {name: profile.id for name, profile in made.items()}


def pair(people: dict[str, str], *names: str) -> tuple[str, str]:
    a, b = sorted(people[n] for n in names)
    return a, b


def run_and_list(client: TestClient) -> list[dict]:
    response = client.post("/v1/match-suggestions/run", headers=bearer())
    assert response.status_code == 200, response.text
    response = client.get("/v1/match-suggestions?status=pending", headers=bearer())
    assert response.status_code == 200, response.text
    return response.json()


def test_run_typo_pair_is_suggested_with_its_agreeing_fields(
    engine: Engine, people: dict[str, str]
) -> None:
    with Session(engine) as session:
        counts = matching.run(session)
        [suggestion] = matching.list_suggestions(session)

    assert counts.created == 1
    assert (suggestion.profile_a, suggestion.profile_b) == pair(people, "ann", "anne")
    assert suggestion.score >= matching.SUGGESTION_THRESHOLD
    assert set(suggestion.fields) == {
        "first_name",
        "last_name",
        "date_of_birth",
        "city",
    }
    assert suggestion.fields["date_of_birth"] == 1.0


def test_run_unrelated_profiles_sharing_a_birthday_are_not_suggested(
    engine: Engine, people: dict[str, str]
) -> None:
    with Session(engine) as session:
        matching.run(session)
        suggested = {
            (s.profile_a, s.profile_b) for s in matching.list_suggestions(session)
        }

    assert pair(people, "bob", "carla") not in suggested


def test_list_suggestions_shows_score_fields_and_both_profiles(
    client: TestClient, people: dict[str, str]
) -> None:
    [suggestion] = run_and_list(client)

    assert suggestion["status"] == "pending"
    assert "last_name" in suggestion["fields"]
    shown = {p["id"]: p for p in suggestion["profiles"]}
    assert shown[people["anne"]]["traits"]["last_name"] == "Smyth"
    assert shown[people["anne"]]["emails"] == ["asmyth80@mail.test"]


def test_approve_suggestion_merges_identities_and_events_onto_one_profile(
    client: TestClient, people: dict[str, str]
) -> None:
    [suggestion] = run_and_list(client)

    response = client.post(
        f"/v1/match-suggestions/{suggestion['id']}/approve", headers=bearer()
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "approved"
    assert response.json()["survivor_id"] == people["ann"]  # the older profile
    profile = client.get("/v1/profiles/email:asmyth80@mail.test", headers=bearer())
    assert profile.status_code == 200, profile.text
    assert profile.json()["id"] == people["ann"]
    assert profile.json()["event_count"] == 2
    assert {i["value"] for i in profile.json()["identities"]} == {
        "ann.smith@example.com",
        "asmyth80@mail.test",
    }


def test_approve_suggestion_twice_is_a_409(
    client: TestClient, people: dict[str, str]
) -> None:
    [suggestion] = run_and_list(client)
    url = f"/v1/match-suggestions/{suggestion['id']}/approve"
    client.post(url, headers=bearer())

    response = client.post(url, headers=bearer())

    assert response.status_code == 409, response.text
    [detail] = response.json()["detail"]
    assert detail["type"] == "match_suggestion_decided"
    assert "approved" in detail["msg"]


def test_approve_suggestion_after_worker_merged_a_profile_is_a_409(
    client: TestClient, engine: Engine, people: dict[str, str]
) -> None:
    [suggestion] = run_and_list(client)
    with Session(engine) as session:
        # An event carrying both e-mails: deterministic resolution merged the pair.
        keys = [(EMAIL, "ann.smith@example.com"), (EMAIL, "asmyth80@mail.test")]
        service.resolve(session, keys, source="web")
        session.commit()

    response = client.post(
        f"/v1/match-suggestions/{suggestion['id']}/approve", headers=bearer()
    )

    assert response.status_code == 409, response.text
    assert response.json()["detail"][0]["type"] == "profile_merged"


def test_reject_suggestion_is_not_suggested_again(
    client: TestClient, people: dict[str, str]
) -> None:
    [suggestion] = run_and_list(client)

    response = client.post(
        f"/v1/match-suggestions/{suggestion['id']}/reject", headers=bearer()
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    assert run_and_list(client) == []
    rejected = client.get("/v1/match-suggestions?status=rejected", headers=bearer())
    assert [s["id"] for s in rejected.json()] == [suggestion["id"]]
    profile = client.get("/v1/profiles/email:asmyth80@mail.test", headers=bearer())
    assert profile.json()["id"] == people["anne"]  # not merged


def test_approve_unknown_suggestion_is_a_404(client: TestClient) -> None:
    response = client.post("/v1/match-suggestions/999/approve", headers=bearer())

    assert response.status_code == 404, response.text
    assert response.json()["detail"][0]["type"] == "match_suggestion_not_found"


def test_list_suggestions_with_unknown_status_is_a_422_naming_the_accepted(
    client: TestClient,
) -> None:
    response = client.get("/v1/match-suggestions?status=maybe", headers=bearer())

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["query", "status"]
    assert all(s.value in detail["msg"] for s in MatchStatus)


def test_match_suggestions_need_the_admin_token(client: TestClient) -> None:
    response = client.post("/v1/match-suggestions/run")

    assert response.status_code == 401, response.text
