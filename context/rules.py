"""The shop's own words on external data (``shop/context.yml``): which temperatures
make which weather band, what is a hot day and a cold snap, and which categories
the recommender lifts in which weather. Checked with the line of each mistake."""

import logging
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.settings import get_settings
from core.yaml_files import YamlFileError, load_model

logger = logging.getLogger(__name__)
BANDS = ("freezing", "cold", "mild", "warm", "hot")
# Weather facts a boost may follow: the yes-or-no facts and each band.
BOOST_FACTS = ("hot_day", "raining", "cold_snap", *BANDS)


class InvalidContextRulesError(YamlFileError):
    code = "invalid_context_rules"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bands(_Strict):
    """The upper edge of each band in degrees Celsius; above ``warm`` is hot."""

    freezing: float = 0.0
    cold: float = 10.0
    mild: float = 18.0
    warm: float = 25.0

    @model_validator(mode="after")
    def _ascending(self) -> "Bands":
        edges = [self.freezing, self.cold, self.mild, self.warm]
        if edges != sorted(edges) or len(set(edges)) != len(edges):
            raise ValueError(
                "band edges must rise: freezing < cold < mild < warm, got "
                f"{self.freezing}, {self.cold}, {self.mild}, {self.warm}"
            )
        return self

    def band(self, celsius: float) -> str:
        for name in ("freezing", "cold", "mild", "warm"):
            if celsius < getattr(self, name):
                return name
        return "hot"


class WeatherRules(_Strict):
    bands: Bands = Bands()
    # A hot day: the day's highest temperature reaches this (Celsius).
    hot_day: float = 27.0
    # A cold snap: the day's highest is this much below the mean of the highs of
    # the three days before.
    cold_snap: float = Field(default=6.0, gt=0)


class Boost(_Strict):
    categories: list[str] = Field(min_length=1)
    # Added to a product's score, which is mostly between 0 and 1.
    boost: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _named(self) -> "Boost":
        if any(not c.strip("/ ") for c in self.categories):
            raise ValueError("a category path must not be empty")
        return self


class Boosts(_Strict):
    hot_day: Boost | None = None
    raining: Boost | None = None
    cold_snap: Boost | None = None
    freezing: Boost | None = None
    cold: Boost | None = None
    mild: Boost | None = None
    warm: Boost | None = None
    hot: Boost | None = None

    def active(self, facts: dict[str, object]) -> list[tuple[str, Boost]]:
        """The boosts whose weather holds in these facts, e.g. hot_day on a hot
        day, ``cold`` in the cold band."""
        held = [k for k in ("hot_day", "raining", "cold_snap") if facts.get(k) is True]
        if isinstance(facts.get("weather_band"), str):
            held.append(str(facts["weather_band"]))
        return [(k, b) for k in held if (b := getattr(self, k, None)) is not None]

    def configured(self) -> bool:
        return any(getattr(self, k) is not None for k in BOOST_FACTS)


class ContextRules(_Strict):
    weather: WeatherRules = WeatherRules()
    boosts: Boosts = Boosts()


def parse(text: str, *, name: str) -> ContextRules:
    return load_model(text, ContextRules, name=name, error=InvalidContextRulesError)[0]


def get_rules(path: Path | None = None) -> ContextRules:
    """The rules in force; an edited file is read again."""
    path = path or get_settings().context.rules_path
    if not path.is_file():
        raise InvalidContextRulesError(
            path.name, [(1, f"no such file: {path} (CDP_CONTEXT__RULES_PATH)")]
        )
    return _load(path, path.stat().st_mtime)


@lru_cache(maxsize=8)
def _load(path: Path, _mtime: float) -> ContextRules:
    rules = parse(path.read_text(encoding="utf-8"), name=path.name)
    logger.info("context rules loaded", extra={"path": str(path)})
    return rules
