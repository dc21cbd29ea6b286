"""Purchase propensity, lifetime value and contact time, from synthetic shops."""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from profiles import service as profiles
from profiles.models import Event, IdentityType, Profile
from segments import predictions
from segments.models import ProfilePrediction
from segments.predictions import (
    NotEnoughHistoryError,
    OrderHistory,
    PredictionModel,
    PredictionModelMissingError,
)
from tests.conftest import bearer

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
EMAIL = IdentityType.email


def regular(rng: random.Random) -> list[tuple[datetime, float]]:
    """A profile that has ordered every 10 to 30 days for over a year, until now."""
    orders, days_ago = [], rng.uniform(380.0, 420.0)
    while days_ago > 1:
        orders.append((NOW - timedelta(days=days_ago), rng.uniform(20.0, 80.0)))
        days_ago -= rng.uniform(10.0, 30.0)
    return orders


def lapsed(rng: random.Random) -> list[tuple[datetime, float]]:
    """A profile that ordered once, 300 to 700 days ago."""
    return [(NOW - timedelta(days=rng.uniform(300.0, 700.0)), rng.uniform(20.0, 80.0))]


def shop(seed: int, regulars: int, lapsed_ones: int) -> list[OrderHistory]:
    rng = random.Random(seed)
    return [regular(rng) for _ in range(regulars)] + [
        lapsed(rng) for _ in range(lapsed_ones)
    ]


@pytest.fixture(scope="module")
def model() -> PredictionModel:
    return predictions.fit(shop(1, 80, 80), now=NOW, currency="EUR")


def test_score_frequent_recent_buyers_rank_above_lapsed_one_time_buyers(
    model: PredictionModel,
) -> None:
    # Profiles the model has not seen: a new draw from the same shop.
    scored = predictions.score(model, shop(2, 20, 20), now=NOW)
    regulars, lapsed_ones = scored[:20], scored[20:]

    lowest_regular = min(p.propensity_30d or 0.0 for p in regulars)
    highest_lapsed = max(p.propensity_30d or 0.0 for p in lapsed_ones)
    assert lowest_regular > highest_lapsed
    assert min(p.clv or 0.0 for p in regulars) > max(p.clv or 0.0 for p in lapsed_ones)
    assert lapsed_ones[0].reason.startswith("1 order, the last ")


def test_score_profile_without_orders_gets_no_prediction_and_the_reason(
    model: PredictionModel,
) -> None:
    [prediction] = predictions.score(model, [[]], now=NOW)

    assert (prediction.propensity_30d, prediction.clv) == (None, None)
    assert prediction.reason == "no completed order yet: nothing to predict from"


@pytest.mark.parametrize(
    ("histories", "expected"),
    [
        (shop(3, 10, 10), "needs at least 50 profiles with a completed order before "
         "2024-05-02 (now minus 30 days); found 20"),
        (shop(3, 0, 100), "needs profiles that ordered again in the 30 days from "
         "2024-05-02; none of the 100 profiles with earlier orders did"),
    ],
    ids=["too-few-profiles", "no-repeat-orders"],
)  # fmt: skip
def test_fit_with_too_little_history_refuses_and_says_what_is_missing(
    histories: list[OrderHistory], expected: str
) -> None:
    with pytest.raises(NotEnoughHistoryError) as raised:
        predictions.fit(histories, now=NOW)

    assert expected in raised.value.msg


def test_fit_with_a_year_horizon_on_half_a_year_of_history_refuses() -> None:
    rng = random.Random(4)
    young = [[(t, v) for t, v in regular(rng) if t > NOW - timedelta(days=180)]
             for _ in range(100)]  # fmt: skip
    young += [[(NOW - timedelta(days=rng.uniform(60, 170)), 30.0)] for _ in range(50)]

    with pytest.raises(NotEnoughHistoryError) as raised:
        predictions.fit(young, now=NOW, clv_days=365)

    assert raised.value.msg.startswith("the lifetime value model needs at least 50")


def tuesday_evening(week: int, minute: int = 30) -> datetime:
    return datetime(2024, 5, 7, 19, minute) - timedelta(weeks=week)  # 7 May: Tuesday


def test_best_contact_time_is_the_hour_and_weekday_of_most_activity() -> None:
    times = [tuesday_evening(w) for w in range(5)]
    times += [datetime(2024, 5, 9, 8, 15), datetime(2024, 5, 11, 13, 0)]

    contact = predictions.best_contact_time(times, zone="Europe/Amsterdam")

    assert (contact.hour, contact.weekday) == (19, 1)
    assert contact.reason == (
        "most active at 19h (5 of 7 events) and on Tuesdays (5 of 7 events), "
        "Europe/Amsterdam time"
    )


def test_best_contact_time_tie_goes_to_the_most_recent_activity() -> None:
    mornings = [datetime(2024, 4, d, 9, 0) for d in (1, 2, 3)]  # Mon to Wed
    evenings = [datetime(2024, 4, d, 21, 0) for d in (8, 9, 10)]  # a week later

    contact = predictions.best_contact_time(mornings + evenings)

    assert (contact.hour, contact.weekday) == (21, 2)


def test_best_contact_time_with_too_few_events_gives_none_and_the_reason() -> None:
    contact = predictions.best_contact_time([tuesday_evening(w) for w in range(4)])

    assert (contact.hour, contact.weekday) == (None, None)
    assert contact.reason == "4 events of their own; 5 needed"


def test_best_contact_time_dates_without_a_time_give_the_weekday_only() -> None:
    dates = [datetime(2024, 5, 3) - timedelta(weeks=w) for w in range(6)]  # Fridays

    contact = predictions.best_contact_time(dates)

    assert (contact.hour, contact.weekday) == (None, 4)
    assert "0 events have a time of day, 5 needed for the hour" in contact.reason


def add_customer(
    session: Session, email: str, orders: OrderHistory, *, currency: str = "EUR"
) -> Profile:
    profile = profiles.resolve(session, [(EMAIL, email)], source="crm")
    for n, (at, total) in enumerate(orders):
        profiles.record_order(
            session, profile, order_id=f"{email}-{n}", source="shop",
            status="completed", total=total, currency=currency, products=[], at=at,
        )  # fmt: skip
    session.commit()
    return profile


def add_views(session: Session, profile: Profile, times: list[datetime]) -> None:
    for n, at in enumerate(times):
        event = Event(
            message_id=f"{profile.id}-{n}", profile_id="", type="track",
            name="Product Viewed", timestamp=at,
            context={"timezone": "Europe/Amsterdam"},
        )  # fmt: skip
        profiles.add_event(session, profile, event)
    session.commit()


def test_refresh_predictions_stores_a_row_per_profile_and_erasure_removes_it(
    session: Session, model: PredictionModel
) -> None:
    rng = random.Random(5)
    ada = add_customer(session, "ada@example.com", regular(rng))
    bob = add_customer(session, "bob@example.com", lapsed(rng))
    new = add_customer(session, "new@example.com", [])
    # Tuesdays at 17:30 UTC are 19:30 in Amsterdam in May (CEST).
    add_views(
        session,
        ada,
        [tuesday_evening(w).replace(hour=17, tzinfo=UTC) for w in range(6)],
    )

    run = predictions.refresh_predictions(session, model=model, now=NOW)
    rows = {r.profile_id: r for r in session.exec(select(ProfilePrediction))}

    assert (run.profiles, run.scored, run.with_contact_time) == (3, 2, 1)
    assert (rows[ada.id].propensity_30d or 0) > (rows[bob.id].propensity_30d or 1)
    assert (rows[ada.id].best_hour, rows[ada.id].best_weekday) == (19, 1)
    assert rows[ada.id].contact_timezone == "Europe/Amsterdam"
    assert (rows[new.id].propensity_30d, rows[new.id].best_hour) == (None, None)
    assert rows[bob.id].model_version == model.version
    profiles.delete(session, ada)
    assert session.get(ProfilePrediction, ada.id) is None


def test_refresh_predictions_drops_the_row_of_a_profile_merged_away(
    session: Session, model: PredictionModel
) -> None:
    rng = random.Random(6)
    ada = add_customer(session, "ada@example.com", regular(rng))
    other = add_customer(session, "ada.work@example.com", lapsed(rng))
    predictions.refresh_predictions(session, model=model, now=NOW)
    profiles.merge(session, ada, other)
    session.commit()

    run = predictions.refresh_predictions(session, model=model, now=NOW)

    assert run.profiles == 1
    stored = session.exec(select(ProfilePrediction.profile_id)).all()
    assert stored == [ada.id]


def test_read_histories_keeps_the_orders_in_the_main_currency(
    session: Session,
) -> None:
    first = NOW - timedelta(days=40)
    add_customer(session, "ada@example.com", [(first, 10.0), (NOW, 20.0)])
    add_customer(session, "bob@example.com", [(first, 99.0)], currency="USD")

    _ids, histories, currency = predictions.read_histories(session)

    assert currency == "EUR"
    assert sorted(total for h in histories for _at, total in h) == [10.0, 20.0]


def test_save_then_load_gives_a_model_that_scores_the_same(
    model: PredictionModel, tmp_path: Path
) -> None:
    histories = shop(7, 5, 5)
    path = predictions.save(model, tmp_path / "models" / "predictions.joblib")

    loaded = predictions.load(path)

    assert predictions.score(loaded, histories, now=NOW) == predictions.score(
        model, histories, now=NOW
    )


def test_load_without_a_fitted_model_names_the_path_and_the_command(
    tmp_path: Path,
) -> None:
    with pytest.raises(PredictionModelMissingError) as raised:
        predictions.load(tmp_path / "none.joblib")

    assert raised.value.msg == (
        f"no prediction model at {tmp_path / 'none.joblib'}; "
        "fit one with `cdp segments predict`"
    )


def test_predictions_route_returns_the_profile_by_email_and_404_before_a_run(
    client: TestClient, engine: Engine, model: PredictionModel
) -> None:
    with Session(engine) as session:
        add_customer(session, "ada@example.com", regular(random.Random(8)))
    url = "/v1/profiles/email:Ada@Example.com/predictions"
    before = client.get(url, headers=bearer())
    with Session(engine) as session:
        predictions.refresh_predictions(session, model=model, now=NOW)

    response = client.get(url, headers=bearer())

    assert before.status_code == 404, before.text
    assert before.json()["detail"][0]["type"] == "prediction_not_found"
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["propensity_30d"] > 0.5
    assert (body["clv_days"], body["currency"]) == (365, "EUR")
    assert body["prediction_reason"].endswith("EUR spent")
    assert client.get(url).status_code == 401
