"""Persuasion types learned from answers to content carrying each cue, against the
population's rate; and content that carries only cues its figures support."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog.models import Product
from events.worker import Worker
from profiles.models import Event
from recommender.models import Filters
from recommender.service import Recommender, shopper_from_events
from recommender.strategies import true_cues
from segments import service as segments
from segments.models import CueEvidence, PersuasionTally
from segments.persuasion import (
    Cue,
    InvalidPersuasionRulesError,
    Tally,
    UnknownCueError,
    assess,
    get_rules,
    parse_cues,
    parse_rules,
    tally,
)
from tests.conftest import bearer
from tests.events.test_worker import drain, envelope, publish

NOW = datetime.now(UTC)


def shown_and_clicked(
    visitor: str, shown: int, clicked: int, cues: list[str]
) -> list[dict[str, Any]]:
    """``shown`` promotions carrying ``cues``, the first ``clicked`` of them clicked
    a minute later."""
    events = []
    for n in range(shown):
        content = {"content_id": f"{visitor}-promo-{n}"}
        at = NOW - timedelta(hours=shown - n)
        events.append(
            envelope(f"{visitor}-seen-{n}", event="Promotion Viewed",
                     anonymousId=visitor, timestamp=at.isoformat(),
                     properties={**content, "cues": cues})
        )  # fmt: skip
        if n < clicked:
            events.append(
                envelope(f"{visitor}-click-{n}", event="Promotion Clicked",
                         anonymousId=visitor, properties=content,
                         timestamp=(at + timedelta(minutes=1)).isoformat())
            )  # fmt: skip
    return events


def population_at_ten_percent() -> list[dict[str, Any]]:
    """Five other profiles, each answering 1 of 10 scarcity promotions."""
    return [
        e for n in range(5) for e in shown_and_clicked(f"pop-{n}", 10, 1, ["scarcity"])
    ]


def state_after_scheduled_refresh(
    client: TestClient, engine: Engine, events: list[dict[str, Any]]
) -> dict[str, Any]:
    drain(Worker(engine, publish(*events)))
    with Session(engine) as session:
        segments.refresh_all(session)
    response = client.get("/v1/profiles/anonymous_id:v-1/state", headers=bearer())
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_persuasion_six_of_eight_against_ten_percent_is_scarcity_with_evidence(
    client: TestClient, engine: Engine
) -> None:
    own = shown_and_clicked("v-1", 8, 6, ["scarcity"])

    report = state_after_scheduled_refresh(
        client, engine, population_at_ten_percent() + own
    )

    state = report["state"]
    [evidence] = [CueEvidence.model_validate(e) for e in state["persuasion_evidence"]]
    strength = get_rules().prior_strength
    assert state["persuasion_type"] == "scarcity"
    assert (evidence.cue, evidence.exposures, evidence.responses) == ("scarcity", 8, 6)
    assert evidence.population_rate == pytest.approx(0.1)
    # The posterior mean of Beta(0.1 s + 6, 0.9 s + 2) for a prior worth s exposures.
    assert evidence.posterior_mean == pytest.approx(
        (0.1 * strength + 6) / (strength + 8), abs=1e-4
    )
    assert evidence.probability_above > get_rules().credibility  # type: ignore[operator]
    assert state["persuasion_reason"].startswith(
        f"scarcity: 6 of 8 exposures answered; estimated "
        f"{evidence.posterior_mean:.0%} against 10% for other profiles"
    )
    moves = [(c["kind"], c["to_value"]) for c in report["history"]]
    assert ("persuasion", "scarcity") in moves


def test_persuasion_one_answer_of_one_is_not_enough_evidence(
    client: TestClient, engine: Engine
) -> None:
    own = shown_and_clicked("v-1", 1, 1, ["scarcity"])

    state = state_after_scheduled_refresh(
        client, engine, population_at_ten_percent() + own
    )["state"]

    [evidence] = state["persuasion_evidence"]
    assert state["persuasion_type"] is None
    assert state["persuasion_reason"].startswith(
        "not enough evidence: scarcity: 1 of 1 exposures answered"
    )
    assert (evidence["exposures"], evidence["responses"]) == (1, 1)
    assert evidence["probability_above"] < get_rules().credibility


def test_persuasion_tallies_are_erased_with_the_profile(
    client: TestClient, engine: Engine
) -> None:
    drain(Worker(engine, publish(*shown_and_clicked("v-1", 3, 1, ["liking"]))))

    erased = client.delete("/v1/profiles/anonymous_id:v-1", headers=bearer())

    assert erased.status_code == 200, erased.text
    with Session(engine) as session:
        assert session.exec(select(PersuasionTally)).all() == []


def event(name: str, hours: float, **properties: Any) -> Event:
    return Event(
        message_id=f"{name}-{hours}", profile_id="p", type="track", name=name,
        properties=properties, timestamp=NOW - timedelta(hours=100 - hours),
    )  # fmt: skip


def test_tally_counts_one_answer_per_exposure_same_content_within_the_window() -> None:
    both = ["scarcity", "social_proof"]
    events = [
        event("Promotion Viewed", 0, content_id="c1", cues=both),
        event("Promotion Viewed", 1, content_id="c1", cues=both),  # shown again
        event("Promotion Clicked", 2, content_id="c1"),
        event("Promotion Viewed", 0, content_id="c2", cues=["authority"]),
        event("Promotion Clicked", 49, content_id="c2"),  # past 48 hours
        event("Product List Viewed", 0, content_id="c3", cues=["liking", "urgency"]),
        event("Product Clicked", 1, content_id="c4", sku="MB01"),  # other content
        event("Product Added", 1, sku="MB01"),  # no content at all
    ]

    counted = tally(reversed(events), now=NOW)

    assert counted == {
        Cue.scarcity: Tally(2, 1), Cue.social_proof: Tally(2, 1),
        Cue.authority: Tally(1, 0), Cue.liking: Tally(1, 0),
    }  # fmt: skip


def test_tally_an_answer_before_the_exposure_does_not_count() -> None:
    events = [
        event("Promotion Clicked", 0, content_id="c1"),
        event("Promotion Viewed", 1, content_id="c1", cues=["reciprocity"]),
    ]

    assert tally(events, now=NOW) == {Cue.reciprocity: Tally(1, 0)}


def test_assess_population_too_small_gives_no_estimate() -> None:
    own = {Cue.commitment: Tally(9, 9)}
    population = {Cue.commitment: Tally(9 + 10, 9 + 1)}

    result = assess(own, population)

    assert result.persuasion_type is None
    assert result.reason == (
        "not enough evidence: fewer than 50 exposures across other profiles for "
        "commitment"
    )
    assert result.evidence[0].posterior_mean is None


def test_assess_picks_the_credible_cue_not_the_highest_raw_rate() -> None:
    # Everyone answers liking half the time; social proof, 2%.
    own = {Cue.liking: Tally(20, 12), Cue.social_proof: Tally(20, 6)}
    population = {Cue.liking: Tally(1020, 512), Cue.social_proof: Tally(1020, 26)}

    result = assess(own, population)

    assert result.persuasion_type is Cue.social_proof


def test_parse_cues_unknown_name_is_rejected_naming_the_accepted_ones() -> None:
    with pytest.raises(UnknownCueError) as error:
        parse_cues(["scarcity", "urgency"])

    assert error.value.loc == ["cues", 1]
    assert str(error.value) == (
        "unknown cue 'urgency'; accepted: social_proof, scarcity, authority, "
        "reciprocity, commitment, liking"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("prior_strength: 20\ncredibility: 1.5\n", "rules.yml, line 2: credibility"),
        ("response_hours: 48\nresponse_event: [Product Clicked]\n",
         "rules.yml, line 2: unknown key 'response_event'"),
    ],
)  # fmt: skip
def test_persuasion_rules_invalid_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(InvalidPersuasionRulesError) as error:
        parse_rules(text, name="rules.yml")

    assert problem in str(error.value)


# True cues: content never claims what the shop's figures do not say ---------------


def test_recommendations_carry_social_proof_only_for_products_with_reviews(
    recommender: Recommender,
) -> None:
    shopper = shopper_from_events([], recommender.index)
    items = recommender.recommend(shopper, Filters(), limit=12).items
    for query in ("jacket", "yoga bag", "running shorts", "watch"):
        items += recommender.search(query, Filters(), limit=12).items
    without = [i for i in items if not i.product.review_count]

    assert without, "the demo catalog has products without reviews"
    for item in items:
        reviewed = bool(item.product.review_count and item.product.rating)
        assert (Cue.social_proof in item.cues) == reviewed, item.product.sku


def test_true_cues_scarcity_only_for_a_low_count_the_shop_reported(
    demo_products: list[Product],
) -> None:
    product = demo_products[0]
    low = get_rules().low_stock

    def with_stock(qty: int, in_stock: bool = True) -> Product:
        return product.model_copy(update={"qty": qty, "in_stock": in_stock})

    assert Cue.scarcity in true_cues(with_stock(low))
    assert Cue.scarcity not in true_cues(with_stock(low + 1))
    assert Cue.scarcity not in true_cues(with_stock(0, in_stock=False))
    # In stock without a count (an export without qty): nothing to be scarce about.
    assert Cue.scarcity not in true_cues(with_stock(0))
