"""What WhatsApp and Messenger share: Meta's webhook handshake, the signature on
every webhook call, and a Graph API client that retries only what may succeed
later (timeouts, 429, 5xx), honours Retry-After and gives up after a bounded time.
"""

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

import httpx
import redis
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from channels import service
from channels.errors import (
    ChannelDisabledError,
    GraphError,
    SignatureMismatchError,
    SignatureMissingError,
    VerificationRefusedError,
)
from channels.models import Inbound, Outgoing, Status
from core.errors import InvalidInputError
from core.redis import get_redis
from core.settings import MetaAppSettings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Waits between attempts when Meta names none: 0.5 s, 1 s, 2 s, ... up to 8 s.
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0


def check_signature(
    channel: str, body: bytes, header: str | None, app_secret: str
) -> None:
    """Meta signs the raw body with the app secret; anything else is refused and
    logged by size only, never by content."""
    if not header:
        logger.warning(
            "unsigned webhook call refused",
            extra={"channel": channel, "bytes": len(body)},
        )
        raise SignatureMissingError(
            f"the {SIGNATURE_HEADER} header is missing; accepted: 'sha256=' and the "
            "HMAC-SHA256 of the raw body keyed with the app secret",
            loc=["header", SIGNATURE_HEADER],
        )
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(f"sha256={digest}".encode(), header.strip().encode()):
        logger.warning(
            "wrongly signed webhook call refused",
            extra={"channel": channel, "bytes": len(body)},
        )
        raise SignatureMismatchError(
            f"the {SIGNATURE_HEADER} header {_shape(header)} does not match the body; "
            "accepted: 'sha256=' and the HMAC-SHA256 of the raw body keyed with the "
            "app secret",
            loc=["header", SIGNATURE_HEADER],
        )


def _shape(header: str) -> str:
    scheme, _, digest = header.partition("=")
    return f"({scheme!r} with {len(digest)} characters)"


def verify_subscription(
    mode: str | None, token: str | None, challenge: str | None, verify_token: str
) -> str:
    """The challenge, echoed, when Meta subscribes the webhook with our token."""
    if mode != "subscribe":
        raise VerificationRefusedError(
            f"hub.mode {mode!r} is not accepted; accepted: 'subscribe'",
            loc=["query", "hub.mode"],
        )
    if not hmac.compare_digest((token or "").encode(), verify_token.encode()):
        raise VerificationRefusedError(
            "hub.verify_token does not match the verify token in the settings",
            loc=["query", "hub.verify_token"],
        )
    if not challenge:
        raise VerificationRefusedError(
            "hub.challenge is missing; Meta sends one to be echoed",
            loc=["query", "hub.challenge"],
        )
    return challenge


async def raw_body(request: Request) -> bytes:
    """The webhook body as sent: the signature is over these bytes, so it is
    parsed only after the check."""
    return await request.body()


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise InvalidInputError(
            "the webhook body is not a JSON object; Meta sends one with 'object' "
            "and 'entry'",
            loc=["body"],
        )
    return payload


class GraphClient:
    """Sends to one Graph API node (a phone number or a page) with the channel's
    token, retrying timeouts, 429 and 5xx until the retry budget is spent."""

    def __init__(
        self,
        settings: MetaAppSettings,
        node: str,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.url = f"{settings.graph_url.rstrip('/')}/{node}/messages"
        self.http = http or httpx.Client()
        self.sleep = sleep

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """Meta's answer to the send; GraphError when refused or given up."""
        deadline = time.monotonic() + self.settings.retry_seconds
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            outcome = self._attempt(body, attempt)
            if outcome.answer is not None:
                return outcome.answer
            if attempt == attempts or time.monotonic() + outcome.wait > deadline:
                raise GraphError(
                    f"gave up after {attempt} attempts: {outcome.reason}",
                    status=outcome.status,
                    attempts=attempt,
                )
            logger.info(
                "graph api send retried",
                extra={"attempt": attempt, "status": outcome.status},
            )
            self.sleep(outcome.wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, body: dict[str, Any], attempt: int) -> "_Outcome":
        token = self.settings.access_token.get_secret_value()
        try:
            response = self.http.post(
                self.url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.settings.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            reason = f"timed out ({type(exc).__name__})"
            return _Outcome(reason=reason, wait=_backoff(attempt))
        except httpx.TransportError as exc:
            raise GraphError(
                f"could not reach the graph api: {type(exc).__name__}", attempts=attempt
            ) from exc
        if response.is_success:
            return _Outcome(answer=_json(response))
        status = response.status_code
        reason = f"HTTP {status}{_graph_error(response)}"
        if status != 429 and status < 500:
            raise GraphError(reason, status=status, attempts=attempt)
        wait = retry_after(response.headers.get("Retry-After"))
        return _Outcome(
            reason=reason,
            status=status,
            wait=_backoff(attempt) if wait is None else wait,
        )


@dataclass(frozen=True)
class _Outcome:
    """One attempt: Meta's answer, or why it failed and how long to wait."""

    answer: dict[str, Any] | None = None
    reason: str = ""
    status: int | None = None
    wait: float = 0.0


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((at - datetime.now(UTC)).total_seconds(), 0.0)


def _backoff(attempt: int) -> float:
    return min(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _graph_error(response: httpx.Response) -> str:
    """Meta's error code and message, if the body has them."""
    error = _json(response).get("error")
    if not isinstance(error, dict):
        return ""
    return f", Graph error {error.get('code')}: {str(error.get('message'))[:160]}"


class Outbound:
    """Sends one channel's messages through the Graph API and puts each on the
    shopper's profile. A send that is refused or given up is recorded, not
    raised: the conversation goes on."""

    channel = ""

    def __init__(self, client: redis.Redis, graph: GraphClient) -> None:
        self.client = client
        self.graph = graph

    def post(
        self, sender: str, outgoing: Outgoing, body: dict[str, Any], *, origin: str
    ) -> bool:
        try:
            answer = self.graph.send(body)
        except GraphError as exc:
            service.record_failure(
                self.client, self.channel, sender, kind=outgoing.kind,
                origin=origin, reason=exc.reason, attempts=exc.attempts,
            )  # fmt: skip
            return False
        sent_id = self.sent_id(answer) or f"unknown-{uuid.uuid4()}"
        service.record(
            self.client, self.channel, sender, "Message Sent",
            {"message_id": sent_id, "kind": outgoing.kind, "origin": origin},
            message_id=f"{self.channel}-out-{sent_id}", text=outgoing.text,
        )  # fmt: skip
        return True

    def sent_id(self, answer: dict[str, Any]) -> str:
        """Meta's id of the message it accepted, from its answer."""
        raise NotImplementedError


def clip(text: str, limit: int) -> str:
    """The text within ``limit`` characters, cut with an ellipsis if it must be."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split(text: str, limit: int) -> list[str]:
    """The text in parts of at most ``limit`` characters, broken at a line end or
    a space where there is one, so that nothing is cut off."""
    parts, rest = [], text.strip()
    while len(rest) > limit:
        cut = max(rest.rfind("\n", 0, limit + 1), rest.rfind(" ", 0, limit + 1))
        cut = cut if cut > 0 else limit  # one word longer than the limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*parts, rest] if rest else parts


def lead_and_body(text: str, body_limit: int, text_limit: int) -> tuple[list[str], str]:
    """A long text before buttons: the parts sent as plain text first, and the last
    part, short enough to be the body the buttons hang under."""
    parts = split(text, text_limit)
    if not parts:
        return [], ""
    *lead, last = parts
    if len(last) > body_limit:
        *more, last = split(last, body_limit)
        lead += [" ".join(more)] if more else []
    return lead, last


def price(amount: Any, currency: str) -> str:
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return ""
    return f"${value:.2f}" if currency.upper() == "USD" else f"{value:.2f} {currency}"


class WebhookReceipt(BaseModel):
    queued: int
    statuses: int


Parse = Callable[[dict[str, Any]], tuple[list[Inbound], list[Status]]]


def webhook_router(
    channel: str, settings_of: Callable[[], MetaAppSettings], parse: Parse
) -> APIRouter:
    """The two routes Meta calls for a channel: the subscription handshake and the
    webhook, which checks the signature and queues what it reads."""
    router = APIRouter(prefix=f"/v1/channels/{channel}", tags=["channels"])

    def enabled() -> MetaAppSettings:
        settings = settings_of()
        if not settings.enabled:
            raise ChannelDisabledError(
                f"the {channel} channel is not enabled; accepted once "
                f"CDP_{channel.upper()}__ENABLED is true and its Meta settings are set",
                loc=["path"],
            )
        return settings

    @router.get("/webhook", response_class=PlainTextResponse)
    def verify_webhook(
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
    ) -> str:
        """Meta's subscription handshake: echo the challenge if the token is ours."""
        verify_token = enabled().verify_token.get_secret_value()
        return verify_subscription(mode, token, challenge, verify_token)

    @router.post("/webhook", response_model=WebhookReceipt)
    def receive_webhook(
        body: Annotated[bytes, Depends(raw_body)],
        client: Annotated[redis.Redis, Depends(get_redis)],
        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    ) -> WebhookReceipt:
        """Messages and status callbacks from Meta: queued, answered by the worker."""
        check_signature(
            channel, body, signature, enabled().app_secret.get_secret_value()
        )
        messages, statuses = parse(parse_body(body))
        queued = service.receive(client, messages, statuses)
        return WebhookReceipt(queued=queued, statuses=len(statuses))

    return router
