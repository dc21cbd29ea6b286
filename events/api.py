"""Tracking routes, compatible with the Segment HTTP tracking API and with what
Segment's client libraries send.

Besides ``/v1/track`` and its siblings this accepts the wire format of
``@segment/analytics-next`` (short paths ``/v1/t``, ``/v1/p``, ... and ``/v1/b``,
the write key in the body, JSON labelled ``text/plain``) and of the server libraries
(gzip-compressed bodies). It also stands in for Segment's CDN: the source settings
the browser library fetches first, and the library itself, served from this api.
"""

import re
import zlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Body, Depends, Path, Request, Response
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.types import Message as AsgiMessage

from core.auth import TrackingSource, source_for_key
from core.errors import DomainError, InvalidInputError, NotFoundError, UnavailableError
from core.redis import get_redis
from core.settings import ROOT, get_settings
from events import service
from events.models import Accepted, Batch

RedisDep = Annotated[redis.Redis, Depends(get_redis)]
SHORT_PATHS = {
    "track": "t", "page": "p", "screen": "s", "identify": "i", "group": "g",
    "alias": "a",
}  # fmt: skip
# Installed by scripts/setup.sh (`npm ci` in web/); nothing is fetched at run time.
BROWSER_LIBRARY_DIR = (
    ROOT / "web" / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
)
BundleName = Annotated[str, Path(pattern=r"^[\w.-]+\.js(\.map)?$")]
# Chunks named after their content, e.g. "407.bundle.61efa1acb302134c434b.js".
HASHED_BUNDLE = re.compile(r"\.bundle\.[0-9a-f]{16,}\.js")


class UnsupportedEncodingError(DomainError):
    code = "unsupported_content_encoding"
    status_code = 415


class InvalidGzipError(InvalidInputError):
    code = "gzip_invalid"


class DecodedBodyTooLargeError(DomainError):
    status_code = 413

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(
            f"the gzip-decoded body is over {limit} bytes; the limit for a {what} "
            f"is {limit} bytes ({limit // 1024} KB)",
            loc=["body"],
        )
        self.code = f"{what}_too_large"


class SegmentBodyRoute(APIRoute):
    """Reads a body the way Segment's clients send one: JSON, gzip-compressed by the
    server libraries when asked to (``Content-Encoding: gzip``), and labelled
    ``text/plain`` (or not labelled at all) by the browser library and by
    ``navigator.sendBeacon``, which keeps a cross-origin request free of a CORS
    preflight. Everything else about the request is left as it came."""

    def get_route_handler(
        self,
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        is_batch = self.path.rsplit("/", 1)[-1] in ("batch", "b")
        what, limit = (
            ("batch", service.MAX_BATCH_BYTES)
            if is_batch
            else ("message", service.MAX_MESSAGE_BYTES)
        )

        async def handle_as_json(request: Request) -> Response:
            body = await request.body()
            encoding = request.headers.get("content-encoding", "").strip().lower()
            if encoding == "gzip":
                body = gunzip(body, limit=limit, what=what)
            elif encoding not in ("", "identity"):
                raise UnsupportedEncodingError(
                    f"Content-Encoding '{encoding}' is not supported; send the body "
                    "as it is or gzip-compressed ('Content-Encoding: gzip')",
                    loc=["header", "content-encoding"],
                )
            return await handle(_json_request(request, body))

        return handle_as_json


def gunzip(data: bytes, *, limit: int, what: str) -> bytes:
    """The decompressed body (every gzip member of it), refused past ``limit``."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidGzipError(
                f"the body is not valid gzip ({exc}); send it as it is or "
                "gzip-compressed as a whole",
                loc=["body"],
            ) from None
        if len(out) > limit:
            raise DecodedBodyTooLargeError(what, limit)
        if not inflater.eof:
            raise InvalidGzipError("the gzip body is cut short", loc=["body"])
        data = inflater.unused_data
    return bytes(out)


def _json_request(request: Request, body: bytes) -> Request:
    """The same request with this body, announced as JSON when it came as plain text
    or unlabelled (no other content type is taken for JSON)."""
    content_type = request.headers.get("content-type", "")
    if content_type == "" or content_type.lower().startswith("text/plain"):
        content_type = "application/json"
    replaced = (b"content-type", b"content-encoding", b"content-length")
    headers = [(k, v) for k, v in request.scope["headers"] if k not in replaced]
    headers += [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
    ]
    delivered = False

    async def receive() -> AsgiMessage:
        nonlocal delivered
        if delivered:
            return await request.receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({**request.scope, "headers": headers}, receive)


def _without_write_key(raw: Any) -> Any:
    # The key authenticated the request; it is not part of the event.
    if isinstance(raw, dict) and "writeKey" in raw:
        return {k: v for k, v in raw.items() if k != "writeKey"}
    return raw


tracking = APIRouter(prefix="/v1", route_class=SegmentBodyRoute)


def _route(message_type: str) -> None:
    def handler(
        body: Annotated[dict[str, Any], Body()],
        source: TrackingSource,
        client: RedisDep,
        request: Request,
    ) -> Accepted:
        # Validated in the service, so a refused message is kept in the failed store.
        return service.accept_message(
            client, get_settings().tracking.stream,
            {**_without_write_key(body), "type": message_type}, source=source,
            sender=sender_of(request),
        )  # fmt: skip

    handler.__name__ = f"{message_type}_message"
    handler.__doc__ = (
        f"Accept one Segment `{message_type}` message "
        f"(also at `/v1/{SHORT_PATHS[message_type]}`, as analytics.js sends it)."
    )
    tracking.post(f"/{message_type}", response_model=Accepted)(handler)
    tracking.post(
        f"/{SHORT_PATHS[message_type]}",
        response_model=Accepted,
        include_in_schema=False,
    )(handler)


for _type in ("track", "page", "screen", "identify", "group", "alias"):
    _route(_type)


@tracking.post("/batch", response_model=Accepted)
@tracking.post("/b", response_model=Accepted, include_in_schema=False)
def batch_messages(
    batch: Batch, source: TrackingSource, client: RedisDep, request: Request
) -> Accepted:
    """Accept up to 2,500 messages; the good ones are kept even when some are not.
    Also at `/v1/b`, where analytics.js sends its batches."""
    items = [_without_write_key(raw) for raw in batch.batch]
    return service.accept_batch(
        client, get_settings().tracking.stream,
        batch.model_copy(update={"batch": items}), source=source,
        sender=sender_of(request),
    )  # fmt: skip


def sender_of(request: Request) -> dict[str, str]:
    """The request's address and user agent, for messages that carry neither (the
    address is the proxy's unless the server trusts its forwarded headers)."""
    sender = {}
    if request.client is not None and request.client.host:
        sender["ip"] = request.client.host
    agent = request.headers.get("user-agent")
    if agent:
        sender["userAgent"] = agent[:512]
    return sender


class SegmentSchema(BaseModel):
    # Segment's field names are camelCase on the wire.
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)


class SegmentioSettings(SegmentSchema):
    """The ``Segment.io`` entry of a source's settings: where events are sent."""

    api_key: str
    api_host: str
    protocol: str
    unbundled_integrations: list[str] = []
    # No device-mode destinations here, so no bundle metadata on each event.
    add_bundled_metadata: bool = False
    maybe_bundled_config_ids: dict[str, list[str]] = {}


class SourceSettings(SegmentSchema):
    """A source's settings in the shape Segment's CDN serves them to analytics.js."""

    integrations: dict[str, SegmentioSettings]
    plan: dict[str, Any] = {
        kind: {"__default": {"enabled": True, "integrations": {}}}
        for kind in ("track", "identify", "group")
    }
    edge_function: dict[str, Any] = {}
    analytics_next_enabled: bool = True
    middleware_settings: dict[str, Any] = {}
    enabled_middleware: dict[str, bool] = {}
    # analytics.js reports its own metrics to Segment unless the rate is 0.
    metrics: dict[str, Any] = {"sampleRate": 0}
    legacy_video_plugins_enabled: bool = False
    remote_plugins: list[Any] = []


cdn = APIRouter()


@cdn.get("/v1/projects/{write_key}/settings", response_model=SourceSettings)
def source_settings(
    write_key: str, request: Request, response: Response
) -> SourceSettings:
    """What analytics.js fetches from `{cdnURL}/v1/projects/{writeKey}/settings`
    before it sends anything: it is told to send its events back to this api."""
    source_for_key(write_key, get_settings(), loc=["path", "write_key"])
    base = request.base_url
    api_host = f"{base.netloc}{base.path.rstrip('/')}/v1"
    # A public document, like Segment's: any shop's pages may read it.
    response.headers["Access-Control-Allow-Origin"] = "*"
    segmentio = SegmentioSettings(
        api_key=write_key, api_host=api_host, protocol=base.scheme
    )
    return SourceSettings(integrations={"Segment.io": segmentio})


@cdn.get("/analytics.js/v1/{write_key}/analytics.min.js", include_in_schema=False)
def browser_library(write_key: str) -> FileResponse:
    """analytics.js where Segment's snippet loads it from, with this api as its CDN
    (the snippet sets ``analytics._cdn`` to this api's address)."""
    source_for_key(write_key, get_settings(), loc=["path", "write_key"])
    return _library_file("standalone.js", max_age=300)


@cdn.get("/analytics-next/bundles/{name}", include_in_schema=False)
def browser_library_bundle(name: BundleName) -> FileResponse:
    """The parts analytics.js loads on demand, from ``{cdn}/analytics-next/bundles/``.
    A name with a content hash may be cached for good."""
    return _library_file(
        name, max_age=31_536_000 if HASHED_BUNDLE.search(name) else 300
    )


def _library_file(name: str, *, max_age: int) -> FileResponse:
    if not BROWSER_LIBRARY_DIR.is_dir():
        raise UnavailableError(
            "the Segment browser library is not installed: run scripts/setup.sh "
            "(it runs `npm ci` in web/)",
            loc=["path"],
        )
    path = BROWSER_LIBRARY_DIR / name
    if not path.is_file():
        raise NotFoundError(f"no bundle named '{name}' in analytics.js", loc=["path"])
    return FileResponse(
        path,
        media_type="application/json" if name.endswith(".map") else "text/javascript",
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )


router = APIRouter(tags=["tracking"])
router.include_router(tracking)
router.include_router(cdn)
