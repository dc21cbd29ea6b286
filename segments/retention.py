"""The retention grid: loyal, promising, one-time, sleepers, red alert, from a
profile's completed orders, by rules in ``retention_rules.yml``."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.yaml_files import YamlFileError, load_model

DEFAULT_RULES = Path(__file__).with_name("retention_rules.yml")


class Cell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    min_orders: int = Field(default=1, ge=1)
    max_orders: int | None = Field(default=None, ge=1)
    within_days: int | None = Field(default=None, ge=1)
    after_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> "Cell":
        if self.max_orders is not None and self.max_orders < self.min_orders:
            raise ValueError("max_orders is below min_orders")
        if self.within_days is not None and self.after_days is not None:
            raise ValueError("give within_days or after_days, not both")
        return self

    def matches(self, orders: int, days_since_last: float) -> bool:
        if orders < self.min_orders:
            return False
        if self.max_orders is not None and orders > self.max_orders:
            return False
        if self.within_days is not None and days_since_last > self.within_days:
            return False
        return not (self.after_days is not None and days_since_last <= self.after_days)

    def describe(self, orders: int, days: float) -> str:
        return (
            f"{orders} order{'s' if orders != 1 else ''}, the last {days:.0f} days ago"
        )


class RetentionRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cells: list[Cell] = Field(min_length=1)


class InvalidRetentionRulesError(YamlFileError):
    code = "invalid_retention_rules"


def parse_rules(text: str, *, name: str) -> RetentionRules:
    return load_model(
        text, RetentionRules, name=name, error=InvalidRetentionRulesError
    )[0]


@lru_cache
def get_rules(path: Path | None = None) -> RetentionRules:
    path = path or DEFAULT_RULES
    return parse_rules(path.read_text(encoding="utf-8"), name=path.name)


@dataclass(frozen=True)
class RetentionResult:
    cell: str | None
    reason: str


def classify(
    placed: Sequence[datetime],
    rules: RetentionRules | None = None,
    *,
    now: datetime | None = None,
) -> RetentionResult:
    """The cell for a customer whose completed orders were placed at ``placed``."""
    rules = rules or get_rules()
    now = now or datetime.now(UTC)
    if not placed:
        return RetentionResult(None, "no completed order yet")
    last = max(p if p.tzinfo else p.replace(tzinfo=UTC) for p in placed)
    days = max((now - last).total_seconds() / 86400, 0.0)
    for cell in rules.cells:
        if cell.matches(len(placed), days):
            return RetentionResult(cell.name, cell.describe(len(placed), days))
    return RetentionResult(None, f"{len(placed)} orders, the last {days:.0f} days ago: "
                           "no cell matches")  # fmt: skip
