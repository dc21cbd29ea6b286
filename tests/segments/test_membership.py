"""Segment membership kept current by the worker, by time windows and by a full
recompute, with its history, through merges, unmerges and erasure."""

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from events.worker import Worker
from profiles import service as profiles
from profiles.models import Consent, ConsentStatus, IdentityType, Order
from segments import membership
from segments.models import (
    ProfilePrediction,
    SegmentChange,
    SegmentMember,
    SegmentRecheck,
)
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish

SEGMENTS = """segments:
  - name: jacket_comparers
    description: Three jacket views in a week
    when:
      event: Product Viewed
      where: {category: {contains: Jackets}}
      within_days: 7
      count: {min: 3}
  - name: buyers
    when: {computed: order_count, min: 1}
  - name: opted_in
    when: {consent: email_marketing}
  - name: big_spenders
    when:
      event: Order Completed
      within_days: 365
      sum: {property: total, min: 100}
"""
NOW = datetime.now(UTC)


@pytest.fixture
def segment_file(use_segments: Callable[[str], Path]) -> Path:
    return use_segments(SEGMENTS)


def jacket_view(message_id: str, days_ago: float, visitor: str = "v-1") -> dict:
    return envelope(
        message_id, anonymousId=visitor, event="Product Viewed",
        timestamp=(NOW - timedelta(days=days_ago)).isoformat(),
        properties={"sku": "WJ06", "category": "Women/Tops/Jackets"},
    )  # fmt: skip


def segments_of(client: TestClient, ref: str) -> dict:
    response = client.get(f"/v1/profiles/{ref}/segments", headers=bearer())
    assert response.status_code == 200, response.text
    return dict(response.json())


def names(report: dict) -> list[str]:
    return [m["segment"] for m in report["segments"]]


def test_a_profile_enters_on_its_third_view_and_leaves_when_the_window_passes(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(jacket_view("m-1", 6), jacket_view("m-2", 3))))
    before = segments_of(client, "anonymous_id:v-1")
    drain(Worker(engine, publish(jacket_view("m-3", 0.1))))
    inside = segments_of(client, "anonymous_id:v-1")
    with Session(engine) as session:
        [due] = session.exec(select(SegmentRecheck.due_at)).all()
        # Nothing happens before the oldest view is a week old ...
        early = membership.recheck_due(session, now=NOW + timedelta(days=0.5))
        # ... and the worker's sweep takes the profile out once it is.
        late = membership.recheck_due(session, now=NOW + timedelta(days=1.1))
    after = segments_of(client, "anonymous_id:v-1")

    assert names(before) == []
    assert names(inside) == ["jacket_comparers"]
    assert abs(due.replace(tzinfo=UTC) - (NOW + timedelta(days=1))) < timedelta(
        minutes=1
    )
    assert (early.entered, early.exited) == (0, 0)
    assert (late.entered, late.exited) == (0, 1)
    assert names(after) == []
    history = [(c["segment"], c["entered"], c["reason"]) for c in after["history"]]
    assert history == [
        ("jacket_comparers", False, "a time window passed"),
        ("jacket_comparers", True, "new events"),
    ]


def test_segment_api_lists_sizes_pages_members_and_movements(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    buys = [
        envelope(f"o-{n}", anonymousId=f"v-{n}", event="Order Completed",
                 properties={"order_id": f"o-{n}", "total": 20 * n})
        for n in range(1, 6)
    ]  # fmt: skip
    drain(Worker(engine, publish(*buys)))

    listed = client.get("/v1/segments", headers=bearer()).json()
    first = client.get(
        "/v1/segments/buyers/members", params={"limit": 3}, headers=bearer()
    ).json()
    second = client.get(
        "/v1/segments/buyers/members",
        params={"limit": 3, "after": first["next_cursor"]},
        headers=bearer(),
    ).json()
    moved = client.get("/v1/segments/big_spenders/movements", headers=bearer()).json()
    unknown = client.get("/v1/segments/byuers/members", headers=bearer())

    sizes = {s["name"]: s["members"] for s in listed}
    assert sizes == {
        "jacket_comparers": 0, "buyers": 5, "opted_in": 0, "big_spenders": 1
    }  # fmt: skip
    assert first["total"] == 5
    assert len(first["items"]) == 3
    assert second["next_cursor"] is None
    paged = [m["profile_id"] for m in first["items"] + second["items"]]
    assert len(set(paged)) == 5
    assert [(m["entered"], m["reason"]) for m in moved] == [(True, "new events")]
    assert unknown.status_code == 404
    assert "byuers" in unknown.json()["detail"][0]["msg"]
    assert "buyers" in unknown.json()["detail"][0]["msg"]


def test_merge_and_unmerge_give_each_person_their_own_segments_back(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    ann = envelope("a-1", anonymousId="ann-phone", event="Order Completed",
                   properties={"order_id": "o-ann", "total": 30})  # fmt: skip
    bob = envelope("b-1", anonymousId=None, userId="bob", event="Order Completed",
                   properties={"order_id": "o-bob", "total": 80})  # fmt: skip
    drain(Worker(engine, publish(ann, bob)))
    client.post(
        "/v1/profiles/customer_id:bob/consents",
        json={"purpose": "email_marketing", "status": "granted"}, headers=bearer(),
    )  # fmt: skip
    with Session(engine) as session:
        bob_profile = profiles.get_by_identity(
            session, (IdentityType.customer_id, "bob")
        )
        assert bob_profile is not None
        membership.evaluate(session, [bob_profile.id], reason="consent given")
        session.commit()
    ann_before = segments_of(client, "anonymous_id:ann-phone")
    bob_before = segments_of(client, "customer_id:bob")

    link = envelope("x-1", anonymousId="ann-phone", userId="bob", type="identify",
                    event=None, traits={})  # fmt: skip
    drain(Worker(engine, publish(link)))
    merged = segments_of(client, "customer_id:bob")
    with Session(engine) as session:
        members = set(session.exec(select(SegmentMember.profile_id)).all())
    survivor = merged["profile_id"]
    [absorbed] = {ann_before["profile_id"], bob_before["profile_id"]} - {survivor}
    response = client.post(
        f"/v1/profiles/{survivor}/unmerge",
        json={"other_profile_id": absorbed},
        headers=bearer(),
    )

    assert response.status_code == 200, response.text
    assert names(ann_before) == ["buyers"]
    assert names(bob_before) == ["buyers", "opted_in"]
    # Together they spent 110: the merged person is a big spender, and the
    # absorbed profile left its segments.
    assert names(merged) == ["big_spenders", "buyers", "opted_in"]
    assert members == {survivor}
    assert names(segments_of(client, "anonymous_id:ann-phone")) == names(ann_before)
    assert names(segments_of(client, "customer_id:bob")) == names(bob_before)


def test_recompute_all_matches_incremental_and_empties_removed_segments(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    views = [jacket_view(f"m-{n}", n, visitor=f"v-{n % 2}") for n in range(6)]
    drain(Worker(engine, publish(*views)))
    with Session(engine) as session:
        incremental = set(session.exec(select(SegmentMember.profile_id)).all())
        for member in session.exec(select(SegmentMember)):
            session.delete(member)
        session.commit()
        again = membership.recompute_all(session)
        recomputed = set(session.exec(select(SegmentMember.profile_id)).all())
    segment_file.write_text(SEGMENTS.split("  - name: buyers")[0].replace(
        "jacket_comparers", "jacket_fans"))  # fmt: skip
    with Session(engine) as session:
        dropped = membership.recompute_all(session)
        reasons = session.exec(
            select(SegmentChange.reason).where(SegmentChange.entered == False)  # noqa: E712
        ).all()

    assert len(incremental) == 2
    assert recomputed == incremental
    assert again.entered == 2
    assert (dropped.exited, dropped.entered) == (2, 2)
    assert reasons == ["segment removed", "segment removed"]


def test_a_recompute_of_many_profiles_writes_every_entry_and_its_history(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    # Enough entries for the bulk path (COPY on PostgreSQL), with consent given
    # by everyone and an order by every third person.
    people = 400
    with Session(engine) as session:
        for n in range(people):
            profile = profiles.resolve(
                session, [(IdentityType.customer_id, f"c-{n}")], source="crm"
            )
            granted = ConsentStatus.granted
            session.add(
                Consent(
                    profile_id=profile.id, purpose="email_marketing", status=granted
                )
            )
            if n % 3 == 0:
                placed = {"placed_at": NOW, "changed_at": NOW}
                session.add(
                    Order(
                        profile_id=profile.id, order_id=f"o-{n}", total=150.0, **placed
                    )
                )
        session.commit()

        moves = membership.recompute_all(session)
        members = session.exec(select(SegmentMember)).all()
        entries = session.exec(
            select(SegmentChange).where(SegmentChange.entered == True)  # noqa: E712
        ).all()

    buyers = len(range(0, people, 3))
    assert moves.entered == people + buyers
    assert sorted({m.segment for m in members}) == ["buyers", "opted_in"]
    assert len(members) == len(entries) == people + buyers
    assert {e.reason for e in entries} == {"full recompute"}
    assert names(segments_of(client, "customer_id:c-0")) == ["buyers", "opted_in"]
    assert names(segments_of(client, "customer_id:c-1")) == ["opted_in"]


def test_a_mistake_in_an_edited_file_keeps_the_last_good_segments(
    segment_file: Path,
) -> None:
    good = membership.get_definitions(segment_file)
    segment_file.write_text("segments:\n  - name: Bad Name\n    when: {stage: x}\n")
    later = segment_file.stat().st_mtime + 5
    os.utime(segment_file, (later, later))  # seen as edited, whatever the clock

    kept = membership.get_definitions(segment_file)

    assert kept is good


def test_a_file_with_mistakes_since_the_start_holds_memberships_until_it_is_fixed(
    use_segments: Callable[[str], Path], client: TestClient, engine: Engine
) -> None:
    # A restart after a bad edit: no good version to keep in force.
    path = use_segments("segments:\n  - name: buyers\n    when: {stage: decison}\n")
    buy = envelope("o-1", event="Order Completed", properties={"order_id": "o-1"})

    drain(Worker(engine, publish(buy)))  # the worker goes on
    unavailable = client.get("/v1/segments", headers=bearer())
    with Session(engine) as session:
        profile = profiles.get_by_ref_or_raise(session, "anonymous_id:v-1")
        stored = [e.name for e in profiles.list_events(session, profile)]
    path.write_text(SEGMENTS)
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    with Session(engine) as session:
        membership.recheck_due(session, now=datetime.now(UTC) + timedelta(seconds=1))

    assert stored == ["Order Completed"]
    assert unavailable.status_code == 503
    [problem] = unavailable.json()["detail"]
    assert problem["type"] == "segments_unavailable"
    assert "segments.yml, line 3" in problem["msg"]
    assert names(segments_of(client, "anonymous_id:v-1")) == ["buyers"]


def test_erasure_removes_memberships_and_their_history(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    buy = envelope("o-1", event="Order Completed", properties={"order_id": "o-1"})
    drain(Worker(engine, publish(buy)))
    assert names(segments_of(client, "anonymous_id:v-1")) == ["buyers"]

    erased = client.delete("/v1/profiles/anonymous_id:v-1", headers=bearer())

    assert erased.status_code == 200, erased.text
    with Session(engine) as session:
        assert session.exec(select(SegmentMember)).all() == []
        assert session.exec(select(SegmentChange)).all() == []


def test_a_prediction_condition_reads_the_stored_predictions(
    segment_file: Path, client: TestClient, engine: Engine
) -> None:
    segment_file.write_text(
        "segments:\n  - name: likely_buyers\n"
        "    when: {prediction: propensity_30d, min: 0.5}\n"
    )
    visits = [envelope("m-1", anonymousId="keen"), envelope("m-2", anonymousId="idle")]
    drain(Worker(engine, publish(*visits)))
    with Session(engine) as session:
        keen, idle = (
            profiles.get_by_identity(session, (IdentityType.anonymous_id, v))
            for v in ("keen", "idle")
        )
        assert keen is not None
        assert idle is not None
        session.add(ProfilePrediction(profile_id=keen.id, propensity_30d=0.71))
        session.add(ProfilePrediction(profile_id=idle.id, propensity_30d=0.12))
        session.commit()
        moves = membership.recompute_all(session)

    assert moves.entered == 1
    assert names(segments_of(client, "anonymous_id:keen")) == ["likely_buyers"]
    assert names(segments_of(client, "anonymous_id:idle")) == []


def test_only_segments_with_a_prediction_condition_call_for_a_recompute_on_predict(
    use_segments: Callable[[str], Path],
) -> None:
    use_segments(SEGMENTS)
    without = membership.tests_predictions()
    path = use_segments(
        SEGMENTS + "  - name: likely\n    when:\n      not: "
        "{prediction: propensity_30d, max: 0.2}\n"
    )
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))  # seen as edited, whatever the clock

    assert without is False
    assert membership.tests_predictions() is True
