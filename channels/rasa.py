"""A small client for the Rasa server's REST channel and status endpoint."""

import logging
from typing import Any

import httpx

from core.errors import UnavailableError
from core.settings import get_settings

logger = logging.getLogger(__name__)


def get_rasa() -> "RasaClient":
    settings = get_settings().rasa
    return RasaClient(
        settings.url, settings.timeout_seconds, settings.token.get_secret_value()
    )


# One connection pool for the process: a client per message spent most of the
# chat hop building TLS contexts (measured: ~32 ms of ~135 ms).
_http = httpx.Client()


class RasaClient:
    def __init__(self, base_url: str, timeout: float, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # Rasa's --auth-token: its HTTP API needs it, the REST channel does not.
        self.token = token

    def send(
        self, sender: str, text: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        payload = {"sender": sender, "message": text, "metadata": metadata or {}}
        try:
            response = _http.post(
                f"{self.base_url}/webhooks/rest/webhook",
                json=payload,
                timeout=self.timeout,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("rasa did not answer", extra={"error": type(exc).__name__})
            raise UnavailableError(
                "the assistant is not reachable right now; please try again shortly",
                loc=["rasa"],
            ) from exc
        return list(response.json())

    def status(self) -> dict[str, Any]:
        response = _http.get(
            f"{self.base_url}/status", params={"token": self.token}, timeout=2.0
        )
        response.raise_for_status()
        return dict(response.json())

    def trigger_intent(
        self, sender: str, intent: str, entities: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Open or continue a conversation from our side (a campaign); returns what
        the assistant said, for the channel to deliver."""
        try:
            response = _http.post(
                f"{self.base_url}/conversations/{sender}/trigger_intent",
                params={"token": self.token, "output_channel": "latest"},
                json={"name": intent, "entities": entities},
                timeout=self.timeout,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("rasa did not take the trigger", extra={"error": str(exc)})
            raise UnavailableError(
                "the assistant is not reachable right now", loc=["rasa"]
            ) from exc
        return list(response.json().get("messages") or [])
