"""Purchase propensity and lifetime value on real order histories (issue #5).

    .venv/bin/python bench/predictions_eval.py [--data ../shared/data]

Two datasets, each cut in time into a calibration part and a holdout:

- CDNOW (orders-cdnow/CDNOW_master.txt): 23,570 customers who first bought in
  the first quarter of 1997, followed to 30 June 1998. Calibration: 1997 (52
  weeks); holdout: the 181 days of 1998 after it. The classic split is 39 + 39
  weeks, but a model that learns from the shop's own past needs a label period
  inside calibration as long as the one it predicts: 39 weeks of labels would
  leave no features before them.
- The Complete Journey (orders-completejourney/transactions.parquet): 2,469
  households, one year of grocery trips; a basket is an order. Calibration:
  January to August 2017; holdout: the 122 days from 1 September.

The models are fitted exactly as `cdp segments predict` fits them in a shop, with
``now`` at the end of calibration: propensity on features up to 30 days before
it and orders in those 30 days; lifetime value on features up to one holdout
length before it and the spend after. They are then scored with features up to
the end of calibration and compared with what happened in the holdout: an order
in its first 30 days (AUC), and the spend over all of it (MAE, RMSE), for every
profile with an order in calibration. Labels and baselines are computed here with
pandas, apart from the feature code.

Not a test: it prints a table.
"""

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segments import predictions  # noqa: E402

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Dataset:
    name: str
    orders: pd.DataFrame  # profile, at (UTC), total
    cutoff: datetime  # the end of calibration: ``now`` for the fit
    end: datetime  # the end of the holdout

    @property
    def holdout_days(self) -> int:
        return (self.end - self.cutoff).days


def read_cdnow(data: Path) -> Dataset:
    raw = pd.read_csv(
        data / "orders-cdnow" / "CDNOW_master.txt", sep=r"\s+",
        dtype={"customer_id": str, "date": str},
    )  # fmt: skip
    orders = pd.DataFrame({
        "profile": raw["customer_id"],
        "at": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
        "total": raw["dollar_value"].astype(float),
    })  # fmt: skip
    return Dataset(
        "CDNOW", orders, datetime(1998, 1, 1, tzinfo=UTC),
        datetime(1998, 7, 1, tzinfo=UTC),
    )  # fmt: skip


def read_complete_journey(data: Path) -> Dataset:
    columns = ["household_id", "basket_id", "sales_value", "transaction_timestamp"]
    path = data / "orders-completejourney" / "transactions.parquet"
    lines = pq.read_table(path, columns=columns).to_pandas()
    baskets = lines.groupby("basket_id").agg(
        profile=("household_id", "first"),
        at=("transaction_timestamp", "min"),
        total=("sales_value", "sum"),
    )
    orders = baskets.reset_index(drop=True)
    orders["profile"] = orders["profile"].astype(str)
    orders["at"] = orders["at"].dt.tz_localize(UTC)
    return Dataset(
        "Complete Journey", orders, datetime(2017, 9, 1, tzinfo=UTC),
        datetime(2018, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def histories_of(orders: pd.DataFrame) -> tuple[list[str], list[list[tuple]]]:
    """The profiles and their (placed_at, total) lists, as the store gives them."""
    ids, histories = [], []
    for profile, group in orders.groupby("profile", sort=True):
        ids.append(str(profile))
        times = [t.to_pydatetime() for t in group["at"]]
        histories.append(list(zip(times, group["total"].tolist(), strict=True)))
    return ids, histories


def truth(dataset: Dataset, ids: list[str]) -> pd.DataFrame:
    """Per profile with an order in calibration: what happened in the holdout, and
    what the baselines know at the cutoff."""
    o = dataset.orders
    cutoff, days = pd.Timestamp(dataset.cutoff), dataset.holdout_days
    before = o[o["at"] < cutoff].groupby("profile")
    frame = pd.DataFrame(index=pd.Index(ids, name="profile"))
    frame["first"], frame["last"] = before["at"].min(), before["at"].max()
    frame["orders"] = before.size()
    frame = frame[frame["orders"].notna()]
    frame["recency"] = (cutoff - frame["last"]) / DAY
    frame["bought_last_30d"] = frame["recency"] < 30
    frame["spend_last_period"] = _spend(o, cutoff - days * DAY, cutoff, frame.index)
    rate = before["total"].sum() / ((cutoff - frame["first"]) / DAY).clip(lower=1)
    frame["spend_average_rate"] = rate.reindex(frame.index) * days
    frame["ordered_30d"] = (
        _spend(o, cutoff, cutoff + 30 * DAY, frame.index, count=True) > 0
    )
    frame["spend_holdout"] = _spend(o, cutoff, pd.Timestamp(dataset.end), frame.index)
    return frame


def _spend(
    o: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, index: pd.Index,
    count: bool = False,
) -> pd.Series:  # fmt: skip
    inside = o[(o["at"] >= start) & (o["at"] < end)].groupby("profile")["total"]
    per = inside.size() if count else inside.sum()
    return per.reindex(index, fill_value=0).astype(float)


def evaluate(dataset: Dataset) -> None:
    ids, histories = histories_of(dataset.orders)
    started = time.perf_counter()
    model = predictions.fit(
        histories, now=dataset.cutoff, clv_days=dataset.holdout_days, currency="USD"
    )
    fitted = time.perf_counter() - started
    scored = dict(zip(ids, predictions.score(model, histories, now=dataset.cutoff),
                      strict=True))  # fmt: skip
    frame = truth(dataset, ids)
    frame["propensity"] = [scored[p].propensity_30d for p in frame.index]
    frame["clv"] = [scored[p].clv for p in frame.index]
    _print_sizes(dataset, frame, fitted, model)
    _print_propensity(frame)
    _print_clv(frame, dataset.holdout_days)


def _print_sizes(
    dataset: Dataset, frame: pd.DataFrame, seconds: float,
    model: predictions.PredictionModel,
) -> None:  # fmt: skip
    o = dataset.orders
    print(f"\n## {dataset.name}")
    print(
        f"{o['profile'].nunique():,} profiles, {len(o):,} orders, "
        f"{o['at'].min():%Y-%m-%d} to {o['at'].max():%Y-%m-%d}; calibration to "
        f"{dataset.cutoff:%Y-%m-%d}, holdout {dataset.holdout_days} days to "
        f"{dataset.end:%Y-%m-%d}"
    )
    print(
        f"scored: {len(frame):,} profiles with an order in calibration; "
        f"{frame['ordered_30d'].mean():.1%} ordered in the first 30 days of the "
        f"holdout; fit on {model.profiles:,} profiles in {seconds:.1f}s"
    )
    v = model.validation
    print(
        "the fit's own check (a fifth of the profiles held out, in calibration): "
        f"AUC {v['propensity_auc']:.3f} (recency {v['recency_auc']:.3f}), CLV MAE "
        f"{v['clv_mae']:.2f} (last period {v['last_period_mae']:.2f})"
    )


def _print_propensity(frame: pd.DataFrame) -> None:
    y = frame["ordered_30d"]
    rows = [
        ("model (gradient-boosted trees)", frame["propensity"]),
        ("baseline: recency (days since last order, fewer is better)",
         -frame["recency"]),
        ("baseline: frequency (orders so far)", frame["orders"]),
        ("baseline: bought in the last 30 days", frame["bought_last_30d"]),
    ]  # fmt: skip
    print(f"\n{'purchase in the next 30 days':<64} {'AUC':>7}")
    for name, value in rows:
        print(f"  {name:<62} {roc_auc_score(y, value):7.3f}")


def _print_clv(frame: pd.DataFrame, days: int) -> None:
    y = frame["spend_holdout"]
    rows = [
        ("model (gradient-boosted trees)", frame["clv"]),
        (f"baseline: spend of the last {days} days", frame["spend_last_period"]),
        ("baseline: average daily spend so far x days", frame["spend_average_rate"]),
        ("baseline: mean holdout spend (an oracle constant)",
         pd.Series(y.mean(), index=y.index)),
        ("baseline: nothing (0)", pd.Series(0.0, index=y.index)),
    ]  # fmt: skip
    title = f"spend in the {days}-day holdout (mean {y.mean():.2f})"
    print(f"\n{title:<64} {'MAE':>7} {'RMSE':>9} {'total':>11}")
    for name, value in rows:
        mae = mean_absolute_error(y, value)
        rmse = float(np.sqrt(mean_squared_error(y, value)))
        print(f"  {name:<62} {mae:7.2f} {rmse:9.2f} {value.sum():11,.0f}")
    print(f"  {'(actual total)':<62} {'':7} {'':9} {y.sum():11,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    python = Path(sys.executable)
    if python.is_relative_to(Path.cwd()):
        python = python.relative_to(Path.cwd())
    print("$ " + shlex.join([str(python), *sys.argv]))
    for read in (read_cdnow, read_complete_journey):
        evaluate(read(args.data))


if __name__ == "__main__":
    main()
