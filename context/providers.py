"""The interface every remote source of external data (weather, traffic) follows,
and the cache in front of it.

A provider fetches values for keys (a place, an area) and raises ``ProviderError``
when it cannot; it never waits past its timeout. ``CachedSource`` keeps each value
in Redis for the provider's time to live, and a last known copy without expiry. A
failed fetch serves the last known value (or None) and leaves the provider alone
for ``retry_seconds``, so a provider that is down costs one timeout, not one per
request.
"""

import json
import logging
from collections.abc import Iterable
from typing import Any, Protocol

import redis

logger = logging.getLogger(__name__)
PREFIX = "cdp:context"


class ProviderError(Exception):
    """A provider could not give its values: unreachable, timed out, or an answer
    that is not what it promises."""


class Provider(Protocol):
    # Names the provider in cache keys and log lines, e.g. "weather".
    kind: str

    def fetch(self, keys: list[str]) -> dict[str, Any]:
        """The value of each key it knows (a JSON-serialisable value); raises
        ProviderError when it cannot answer at all."""
        ...


class CachedSource:
    def __init__(
        self,
        provider: Provider,
        client: redis.Redis,
        *,
        ttl_seconds: float,
        retry_seconds: float,
    ) -> None:
        self.provider = provider
        self.client = client
        self.ttl = max(int(ttl_seconds), 1)
        self.retry = int(retry_seconds)
        self.prefix = f"{PREFIX}:{provider.kind}"

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The value of each key: cached, fetched, or the last known one; a key
        with none of these is left out. Never raises on a provider failure."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        try:
            return self._get_many(wanted)
        except redis.RedisError as exc:
            logger.warning(
                "context cache unavailable",
                extra={"kind": self.provider.kind, "error": type(exc).__name__},
            )
            return {}

    def get(self, key: str) -> Any:
        return self.get_many([key]).get(key)

    def _get_many(self, keys: list[str]) -> dict[str, Any]:
        cached = self.client.mget([self._fresh(k) for k in keys])
        found = {k: json.loads(v) for k, v in zip(keys, cached, strict=True) if v}
        missing = [k for k in keys if k not in found]
        if not missing:
            return found
        if self.client.exists(self._down()):
            return found | self._last_known(missing)
        try:
            fetched = self.provider.fetch(missing)
        except ProviderError as exc:
            logger.warning(
                "context provider failed; serving the last known values",
                extra={"kind": self.provider.kind, "error": str(exc)},
            )
            if self.retry:
                self.client.set(self._down(), str(exc)[:200], ex=self.retry)
            return found | self._last_known(missing)
        self._keep(fetched)
        return found | fetched

    def _keep(self, values: dict[str, Any]) -> None:
        if not values:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, value in values.items():
            text = json.dumps(value)
            pipe.set(self._fresh(key), text, ex=self.ttl)
            pipe.set(self._last(key), text)
        pipe.execute()

    def _last_known(self, keys: list[str]) -> dict[str, Any]:
        stored = self.client.mget([self._last(k) for k in keys])
        return {k: json.loads(v) for k, v in zip(keys, stored, strict=True) if v}

    def _fresh(self, key: str) -> str:
        return f"{self.prefix}:fresh:{key}"

    def _last(self, key: str) -> str:
        return f"{self.prefix}:last:{key}"

    def _down(self) -> str:
        return f"{self.prefix}:down"
