"""Predictions per profile from its own history: the chance of a completed order in
the next 30 days, the lifetime value (CLV: the spend over the next ``clv_days``, 365
by default, in the shop's main currency), and the hour and weekday the profile is
most active.

Both predictions come from scikit-learn gradient-boosted trees on RFM-style
features of the completed orders before a cutoff. They learn from the shop's own
past, split in time as they are used: features up to ``now - horizon``, the
outcome in the horizon after it (and the same at a few earlier splits). With too
little history the fit refuses; no rule of thumb is passed off as a model.

The CLV is the mean, in square-root space, of two estimates: one fitted to the
square root of spend (close to the typical value, so it errs little per profile
but sums to too little, since spend is mostly zero and heavy-tailed) and one
with Poisson loss (the expected value: it sums right but follows rare big
spenders). ``bench/predictions_eval.py`` measures both against naive baselines.
"""

import logging
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sqlalchemy import delete
from sqlmodel import Session, col, select

from core.errors import ConflictError, NotFoundError, UnavailableError
from core.settings import get_settings
from profiles import service as profiles
from segments.models import ProfilePrediction

logger = logging.getLogger(__name__)

PROPENSITY_DAYS = 30
CLV_DAYS = 365
# With fewer profiles with orders than this, the trees would learn noise.
MIN_PROFILES = 50
# Training rows come from the split closest to now and this many earlier ones,
# SNAPSHOT_STEP days apart: more rows, and less of one month's peculiarities.
SNAPSHOTS = 4
SNAPSHOT_STEP = 30
# Profiles held out of a first fit to measure it.
VALIDATION_SHARE = 0.2
# The contact time needs this many of the profile's own events of the last
# ACTIVITY_DAYS.
MIN_EVENTS = 5
ACTIVITY_DAYS = 365
# Events the platform sends to a profile: they tell when we spoke, not when they act
# (Promotion Viewed is written when a campaign is shown or sent; on the website it
# comes with a page view of theirs, which counts).
NOT_THEIR_ACTIVITY = (
    "Chat Message Sent", "Campaign Message Sent", "Agent Message", "Agent Released",
    "Promotion Viewed",
)  # fmt: skip
WINDOWS = (30, 90, 180, 365)
# "period": the horizon's length before the cutoff (30 days for the propensity).
FEATURES = (
    "orders", "order_days", "days_since_last", "days_since_first",
    "spend_total", "spend_mean", "spend_max", "spend_last",
    *(f"orders_{w}d" for w in WINDOWS), *(f"spend_{w}d" for w in WINDOWS),
    "spend_period", "spend_half_period",
    "gap_mean", "gap_std", "gap_last", "overdue", "spend_per_day",
)  # fmt: skip
WEEKDAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays",
            "Saturdays", "Sundays")  # fmt: skip

# One profile's completed orders: when each was placed and its total.
OrderHistory = Sequence[tuple[datetime, float]]


class NotEnoughHistoryError(ConflictError):
    code = "not_enough_history"


class PredictionModelMissingError(UnavailableError):
    code = "prediction_model_missing"


class PredictionModelOutdatedError(UnavailableError):
    code = "prediction_model_outdated"


class PredictionNotFoundError(NotFoundError):
    code = "prediction_not_found"


class _OrderFigures(Protocol):
    """What is read of an order (``profiles.service.list_orders_of`` gives it)."""

    @property
    def placed_at(self) -> datetime: ...
    @property
    def total(self) -> float: ...
    @property
    def currency(self) -> str: ...
    @property
    def status(self) -> str: ...


@dataclass
class SpendModel:
    """Spend over a horizon: two regressors averaged in square-root space."""

    root: HistGradientBoostingRegressor  # fitted to the square root of spend
    mean: HistGradientBoostingRegressor  # Poisson loss: the expected spend

    @classmethod
    def fit(cls, x: np.ndarray, spend: np.ndarray, *, seed: int) -> "SpendModel":
        root = _regressor("squared_error", seed).fit(x, np.sqrt(spend))
        return cls(root=root, mean=_regressor("poisson", seed).fit(x, spend))

    def predict(self, x: np.ndarray) -> np.ndarray:
        root = np.maximum(self.root.predict(x), 0.0)
        return ((root + np.sqrt(self.mean.predict(x))) / 2) ** 2


@dataclass
class PredictionModel:
    """Both fitted models and what they were fitted on."""

    propensity: HistGradientBoostingClassifier
    clv: SpendModel
    clv_days: int
    currency: str | None
    trained_at: datetime  # the ``now`` of the fit: its outcomes end there
    profiles: int  # profiles with an order before the latest propensity split
    # From a first fit without a fifth of the profiles, scored on those: AUC and MAE
    # beside the baselines (recency; the spend of the last period of equal length).
    validation: dict[str, float] = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES
    sklearn_version: str = sklearn.__version__

    @property
    def version(self) -> str:
        return f"hgb-{self.trained_at:%Y%m%dT%H%MZ}"


@dataclass(frozen=True)
class Prediction:
    propensity_30d: float | None
    clv: float | None
    reason: str


@dataclass(frozen=True)
class ContactTime:
    hour: int | None  # 0 to 23, in the profile's time zone
    weekday: int | None  # 0 is Monday
    reason: str


@dataclass(frozen=True)
class PredictionRun:
    profiles: int
    scored: int  # with a propensity and a CLV: those with a completed order
    with_contact_time: int


class _Orders:
    """Every profile's orders as flat arrays, sorted by profile and then time, so
    the features at any cutoff are a few vector operations over all profiles."""

    def __init__(self, histories: Sequence[OrderHistory]) -> None:
        owner = [i for i, history in enumerate(histories) for _ in history]
        days = [_day(at) for history in histories for at, _total in history]
        totals = [total for history in histories for _at, total in history]
        order = np.lexsort((days, owner))
        self.size = len(histories)
        self.owner = np.asarray(owner, dtype=np.int64)[order]
        self.day = np.asarray(days, dtype=float)[order]
        self.total = np.asarray(totals, dtype=float)[order]

    def counts(self, cutoff: float) -> np.ndarray:
        return np.bincount(self.owner[self.day < cutoff], minlength=self.size)

    def outcome(self, start: float, days: float) -> tuple[np.ndarray, np.ndarray]:
        """Per profile: whether it ordered in [start, start + days), and its spend."""
        kept = (self.day >= start) & (self.day < start + days)
        owner = self.owner[kept]
        bought = np.bincount(owner, minlength=self.size) > 0
        spend = np.bincount(owner, weights=self.total[kept], minlength=self.size)
        return bought, np.maximum(spend, 0.0)

    def features(self, cutoff: float, period: int) -> np.ndarray:
        """One row per profile, the columns of FEATURES, from the orders before
        ``cutoff`` (NaN where a figure does not exist yet: gaps of one order)."""
        kept = self.day < cutoff
        owner, day, total = self.owner[kept], self.day[kept], self.total[kept]
        n = self.size
        orders = np.bincount(owner, minlength=n).astype(float)
        spend = np.bincount(owner, weights=total, minlength=n)
        first, last, spend_max, spend_last, gap_last = _ends(owner, day, total, n)
        columns = [orders, _distinct_days(owner, day, n), cutoff - last, cutoff - first]
        columns += [spend, _ratio(spend, orders), spend_max, spend_last]
        recent = [day >= cutoff - w for w in WINDOWS]
        columns += [np.bincount(owner[r], minlength=n).astype(float) for r in recent]
        columns += [
            np.bincount(owner[r], weights=total[r], minlength=n) for r in recent
        ]
        columns += [self.outcome(cutoff - period, period)[1],
                    self.outcome(cutoff - period / 2, period / 2)[1]]  # fmt: skip
        gap_mean, gap_std = _gaps(owner, day, orders, first, last)
        columns += [gap_mean, gap_std, gap_last, _ratio(cutoff - last, gap_mean)]
        columns.append(spend / np.maximum(cutoff - first, 1.0))
        return np.column_stack(columns)


def _day(at: datetime) -> float:
    return _aware(at).timestamp() / 86400


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    return np.where(np.isfinite(out), out, np.nan)


def _ends(
    owner: np.ndarray, day: np.ndarray, total: np.ndarray, n: int
) -> tuple[np.ndarray, ...]:
    """First and last order day, largest and last total, last gap, per profile."""
    first, last, spend_max, spend_last, gap_last = (
        np.full(n, np.nan) for _ in range(5)
    )
    if not len(owner):
        return first, last, spend_max, spend_last, gap_last
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    ends = np.r_[starts[1:], len(owner)] - 1
    who = owner[starts]
    first[who], last[who] = day[starts], day[ends]
    spend_max[who], spend_last[who] = np.maximum.reduceat(total, starts), total[ends]
    two = ends > starts
    gap_last[who[two]] = day[ends[two]] - day[ends[two] - 1]
    return first, last, spend_max, spend_last, gap_last


def _distinct_days(owner: np.ndarray, day: np.ndarray, n: int) -> np.ndarray:
    """Days with an order: two orders in one visit are one purchase occasion."""
    if not len(owner):
        return np.zeros(n)
    pairs = np.unique(np.column_stack([owner, np.floor(day)]), axis=0)
    return np.bincount(pairs[:, 0].astype(np.int64), minlength=n).astype(float)


def _gaps(
    owner: np.ndarray, day: np.ndarray, orders: np.ndarray, first: np.ndarray,
    last: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Mean and standard deviation of the days between a profile's orders."""
    same = owner[1:] == owner[:-1]
    gaps, who = np.diff(day)[same], owner[1:][same]
    gap_mean = _ratio(last - first, orders - 1)
    squares = _ratio(
        np.bincount(who, weights=gaps**2, minlength=len(orders)), orders - 1
    )
    return gap_mean, np.sqrt(np.maximum(squares - gap_mean**2, 0.0))


@dataclass(frozen=True)
class _TrainingSet:
    x: np.ndarray
    bought: np.ndarray
    spend: np.ndarray
    profile: np.ndarray  # the row's profile, to hold a profile out whole
    latest: np.ndarray  # the rows of the split closest to now

    @property
    def previous(self) -> np.ndarray:
        """Spend in the period before the split as long as the one predicted."""
        return self.x[:, FEATURES.index("spend_period")]


def _training_set(orders: _Orders, cutoff: float, days: int) -> _TrainingSet:
    """Rows for the profiles with an order before each split (``cutoff`` and
    SNAPSHOTS earlier ones), with what they did in the ``days`` after it."""
    parts = []
    for k in range(SNAPSHOTS + 1):
        split = cutoff - k * SNAPSHOT_STEP
        has = orders.counts(split) > 0
        bought, spend = orders.outcome(split, days)
        x = orders.features(split, days)[has]
        parts.append((x, bought[has], spend[has], np.flatnonzero(has), k == 0))
    return _TrainingSet(
        x=np.concatenate([p[0] for p in parts]),
        bought=np.concatenate([p[1] for p in parts]),
        spend=np.concatenate([p[2] for p in parts]),
        profile=np.concatenate([p[3] for p in parts]),
        latest=np.concatenate([np.full(len(p[3]), p[4]) for p in parts]),
    )


def _require_enough(
    rows: _TrainingSet, *, what: str, split: datetime, days: int, min_profiles: int
) -> None:
    """Refuse to fit on too little, saying what is missing and for which period."""
    before = int(rows.latest.sum())
    period = f"the {days} days from {split:%Y-%m-%d}"
    if before < min_profiles:
        raise NotEnoughHistoryError(
            f"the {what} model needs at least {min_profiles} profiles with a "
            f"completed order before {split:%Y-%m-%d} (now minus {days} days); "
            f"found {before}"
        )
    again = int(rows.bought[rows.latest].sum())
    if again == 0:
        raise NotEnoughHistoryError(
            f"the {what} model needs profiles that ordered again in {period}; "
            f"none of the {before} profiles with earlier orders did"
        )
    if again == before:
        raise NotEnoughHistoryError(
            f"the {what} model needs profiles that did not order in {period}; "
            f"all {before} profiles with earlier orders did"
        )


def _classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.05, max_iter=200, max_leaf_nodes=15, min_samples_leaf=40,
        l2_regularization=1.0, random_state=seed,
    )  # fmt: skip


def _regressor(loss: str, seed: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss=loss, learning_rate=0.05, max_iter=200, max_leaf_nodes=15,
        min_samples_leaf=40, l2_regularization=1.0, random_state=seed,
    )  # fmt: skip


def fit(
    histories: Sequence[OrderHistory],
    *,
    now: datetime,
    clv_days: int = CLV_DAYS,
    currency: str | None = None,
    min_profiles: int = MIN_PROFILES,
    seed: int = 0,
) -> PredictionModel:
    """Fit both models on the shop's history as of ``now``: the propensity on who
    ordered in the last 30 days, the CLV on the spend of the last ``clv_days``.

    Raises NotEnoughHistoryError when either lacks profiles or outcomes."""
    if clv_days < PROPENSITY_DAYS:
        raise ValueError(f"clv_days is {clv_days}; give {PROPENSITY_DAYS} or more")
    orders = _Orders(histories)
    today = _day(now)
    buying = _training_set(orders, today - PROPENSITY_DAYS, PROPENSITY_DAYS)
    spending = _training_set(orders, today - clv_days, clv_days)
    for rows, what, days in ((buying, "propensity", PROPENSITY_DAYS),
                             (spending, "lifetime value", clv_days)):  # fmt: skip
        split = _aware(now) - timedelta(days=days)
        _require_enough(
            rows, what=what, split=split, days=days, min_profiles=min_profiles
        )
    model = PredictionModel(
        propensity=_classifier(seed).fit(buying.x, buying.bought),
        clv=SpendModel.fit(spending.x, spending.spend, seed=seed),
        clv_days=clv_days, currency=currency, trained_at=_aware(now),
        profiles=int(buying.latest.sum()),
        validation=_validate(buying, spending, seed=seed),
    )  # fmt: skip
    logger.info(
        "prediction models fitted",
        extra={"profiles": model.profiles, **model.validation},
    )
    return model


def _validate(
    buying: _TrainingSet, spending: _TrainingSet, *, seed: int
) -> dict[str, float]:
    """Fit again without a fifth of the profiles and score the latest split of
    those, beside the baselines a marketer would use without a model."""
    size = int(max(buying.profile.max(), spending.profile.max())) + 1
    held = np.random.default_rng(seed).random(size) < VALIDATION_SHARE
    return {
        **_validate_propensity(buying, held, seed),
        **_validate_clv(spending, held, seed),
    }


def _validate_propensity(
    rows: _TrainingSet, held: np.ndarray, seed: int
) -> dict[str, float]:
    train, test = ~held[rows.profile], held[rows.profile] & rows.latest
    if len(set(rows.bought[test])) < 2 or len(set(rows.bought[train])) < 2:
        return {}
    model = _classifier(seed).fit(rows.x[train], rows.bought[train])
    chance = model.predict_proba(rows.x[test])[:, 1]
    recency = -rows.x[test, FEATURES.index("days_since_last")]
    return {
        "propensity_auc": float(roc_auc_score(rows.bought[test], chance)),
        "recency_auc": float(roc_auc_score(rows.bought[test], recency)),
    }


def _validate_clv(rows: _TrainingSet, held: np.ndarray, seed: int) -> dict[str, float]:
    train, test = ~held[rows.profile], held[rows.profile] & rows.latest
    if not test.any() or not rows.spend[train].any():
        return {}
    value = SpendModel.fit(rows.x[train], rows.spend[train], seed=seed).predict(
        rows.x[test]
    )
    truth = rows.spend[test]
    return {
        "clv_mae": float(mean_absolute_error(truth, value)),
        "last_period_mae": float(mean_absolute_error(truth, rows.previous[test])),
    }


def score(
    model: PredictionModel, histories: Sequence[OrderHistory], *, now: datetime
) -> list[Prediction]:
    """One prediction per history, from its orders before ``now``; a profile
    without any gets none, and the reason."""
    orders = _Orders(histories)
    today = _day(now)
    has = orders.counts(today) > 0
    x = orders.features(today, PROPENSITY_DAYS)
    chance, value = np.full(len(histories), np.nan), np.full(len(histories), np.nan)
    if has.any():
        chance[has] = model.propensity.predict_proba(x[has])[:, 1]
        value[has] = model.clv.predict(orders.features(today, model.clv_days)[has])
    return [
        Prediction(float(chance[i]), round(float(value[i]), 2),
                   _describe(x[i], model.currency))
        if has[i]
        else Prediction(None, None, "no completed order yet: nothing to predict from")
        for i in range(len(histories))
    ]  # fmt: skip


def _describe(row: np.ndarray, currency: str | None) -> str:
    """The facts a prediction rests on, as a marketer would say them."""
    column = dict(zip(FEATURES, row.tolist(), strict=True))
    orders, days = int(column["orders"]), column["days_since_last"]
    text = f"{orders} order{'s' if orders != 1 else ''}, the last {days:.0f} days ago"
    if orders > 1:
        text += f", one every {column['gap_mean']:.0f} days on average"
    return f"{text}; {column['spend_total']:.2f} {currency or ''} spent".rstrip()


def best_contact_time(
    times: Sequence[datetime], *, zone: str = "UTC", min_events: int = MIN_EVENTS
) -> ContactTime:
    """The hour and the weekday of most of a profile's own activity, ``times``
    given in its time zone ``zone``; of equals, the one active most recently.

    A time at exactly midnight is taken for a date without a time of day (an
    imported order, say): it counts for the weekday only. With fewer than
    ``min_events`` times there is no answer, only the reason."""
    times = sorted(times)
    if len(times) < min_events:
        return ContactTime(
            None, None, f"{len(times)} events of their own; {min_events} needed"
        )
    weekday, on_day = _most_frequent([t.weekday() for t in times])
    said = f"on {WEEKDAYS[weekday]} ({on_day} of {len(times)} events)"
    timed = [
        t for t in times if (t.hour, t.minute, t.second, t.microsecond) != (0,) * 4
    ]
    if len(timed) < min_events:
        reason = f"most active {said}; {len(timed)} events have a time of day, "
        return ContactTime(None, weekday, reason + f"{min_events} needed for the hour")
    hour, at_hour = _most_frequent([t.hour for t in timed])
    reason = f"most active at {hour}h ({at_hour} of {len(timed)} events) and {said}"
    return ContactTime(hour, weekday, f"{reason}, {zone} time")


def _most_frequent(values: list[int]) -> tuple[int, int]:
    """The most frequent value and its count; of equals, the one seen last (the
    values are in time order)."""
    count: dict[int, int] = {}
    seen_last: dict[int, int] = {}
    for position, value in enumerate(values):
        count[value] = count.get(value, 0) + 1
        seen_last[value] = position
    best = max(count, key=lambda v: (count[v], seen_last[v]))
    return best, count[best]


def save(model: PredictionModel, path: Path | None = None) -> Path:
    """Write the model where ``load`` finds it, replacing the previous one whole."""
    path = path or get_settings().predictions.model_path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    joblib.dump(model, partial)
    os.replace(partial, path)
    return path


def load(path: Path | None = None) -> PredictionModel:
    """The saved model (a pickle: load only what this platform wrote)."""
    path = path or get_settings().predictions.model_path
    if not path.exists():
        raise PredictionModelMissingError(
            f"no prediction model at {path}; fit one with `cdp segments predict`"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            model = joblib.load(path)
    except InconsistentVersionWarning as exc:
        raise PredictionModelOutdatedError(
            f"the prediction model at {path} was fitted with scikit-learn "
            f"{exc.original_sklearn_version} and this is {sklearn.__version__}; "
            "fit it again with `cdp segments predict`"
        ) from None
    if not isinstance(model, PredictionModel) or model.features != FEATURES:
        raise PredictionModelOutdatedError(
            f"{path} is not a prediction model with the features of this version; "
            "fit it again with `cdp segments predict`"
        )
    return model


def read_histories(
    session: Session, *, batch: int = 500
) -> tuple[list[str], list[OrderHistory], str | None]:
    """Every live profile's completed orders in the shop's main currency (the one
    most orders are in): the ids, the histories, and that currency. Totals in
    other currencies cannot be added up, so those orders are left out."""
    ids: list[str] = []
    figures: list[list[_OrderFigures]] = []
    after = None
    while page := profiles.list_live_ids(session, after=after, limit=batch):
        orders = profiles.list_orders_of(session, page)
        ids += page
        figures += [[o for o in orders[p] if o.status == "completed"] for p in page]
        after = page[-1]
    used = Counter(o.currency for history in figures for o in history)
    currency = used.most_common(1)[0][0] if used else None
    if len(used) > 1:
        left_out = sum(n for c, n in used.items() if c != currency)
        logger.warning(
            "orders in other currencies left out of predictions",
            extra={"currency": currency, "orders": left_out},
        )
    return ids, [_history(h, currency) for h in figures], currency


def _history(orders: Sequence[_OrderFigures], currency: str | None) -> OrderHistory:
    return [(o.placed_at, o.total) for o in orders if o.currency == currency]


def fit_store(
    session: Session, *, now: datetime | None = None, clv_days: int = CLV_DAYS
) -> PredictionModel:
    """``fit`` on every live profile's completed orders in the profile store."""
    _ids, histories, currency = read_histories(session)
    return fit(
        histories, now=now or datetime.now(UTC), clv_days=clv_days, currency=currency
    )


def refresh_predictions(
    session: Session,
    *,
    model: PredictionModel | None = None,
    now: datetime | None = None,
    batch: int = 500,
) -> PredictionRun:
    """Predict for every live profile and store one row each, replacing the last;
    rows of profiles merged away since go. ``model``: the saved one by default."""
    model = model or load()
    now = _aware(now or datetime.now(UTC))
    written: set[str] = set()
    scored = timed = 0
    after = None
    while ids := profiles.list_live_ids(session, after=after, limit=batch):
        rows = _refresh_batch(session, model, ids, now)
        session.commit()
        written.update(ids)
        scored += sum(1 for r in rows if r.propensity_30d is not None)
        timed += sum(1 for r in rows if r.best_weekday is not None)
        after = ids[-1]
    _delete_stale(session, written)
    logger.info(
        "predictions stored", extra={"profiles": len(written), "scored": scored}
    )
    return PredictionRun(profiles=len(written), scored=scored, with_contact_time=timed)


def _refresh_batch(
    session: Session, model: PredictionModel, ids: list[str], now: datetime
) -> list[ProfilePrediction]:
    orders = profiles.list_orders_of(session, ids)
    histories = [
        _history([o for o in orders[p] if o.status == "completed"], model.currency)
        for p in ids
    ]
    activity = profiles.list_activity_of(
        session, ids, since=now - timedelta(days=ACTIVITY_DAYS),
        leave_out=NOT_THEIR_ACTIVITY,
    )  # fmt: skip
    stored = {
        row.profile_id: row
        for row in session.exec(
            select(ProfilePrediction).where(col(ProfilePrediction.profile_id).in_(ids))
        )
    }
    rows = []
    for profile_id, prediction in zip(
        ids, score(model, histories, now=now), strict=True
    ):
        row = stored.get(profile_id) or ProfilePrediction(profile_id=profile_id)
        _fill(row, model, prediction, _contact_time(activity[profile_id], now), now)
        session.add(row)
        rows.append(row)
    return rows


def _fill(
    row: ProfilePrediction, model: PredictionModel, prediction: Prediction,
    contact: tuple[ContactTime, str], now: datetime,
) -> None:  # fmt: skip
    row.propensity_30d, row.clv = prediction.propensity_30d, prediction.clv
    row.clv_days, row.currency = model.clv_days, model.currency
    row.prediction_reason = prediction.reason
    time, zone = contact
    row.best_hour, row.best_weekday = time.hour, time.weekday
    row.contact_timezone, row.contact_reason = zone, time.reason
    row.model_version, row.computed_at = model.version, now


def _contact_time(
    events: list[tuple[datetime, dict[str, Any]]], now: datetime
) -> tuple[ContactTime, str]:
    """The contact time in the profile's time zone: the latest one its events
    name (Segment's ``context.timezone``), UTC when none does."""
    zone_name, zone = "UTC", UTC
    for _at, context in reversed(events):
        name = context.get("timezone")
        if isinstance(name, str) and name:
            try:
                zone_name, zone = name, ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            break
    times = [at.astimezone(zone) for at, _context in events if at <= now]
    return best_contact_time(times, zone=zone_name), zone_name


def _delete_stale(session: Session, written: set[str]) -> None:
    stale = [
        p
        for p in session.exec(select(ProfilePrediction.profile_id))
        if p not in written
    ]
    for start in range(0, len(stale), 500):
        chunk = stale[start : start + 500]
        session.execute(
            delete(ProfilePrediction).where(
                col(ProfilePrediction.profile_id).in_(chunk)
            )
        )
    session.commit()


def get_or_raise(session: Session, profile_id: str) -> ProfilePrediction:
    row = session.get(ProfilePrediction, profile_id)
    if row is None:
        raise PredictionNotFoundError(
            f"no predictions for profile {profile_id!r} yet; they are made for every "
            "profile by `cdp segments predict`",
            loc=["path", "ref"],
        )
    return row
