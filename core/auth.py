"""Who may call: sources with a write key, administrators with the admin token."""

import base64
import binascii
import secrets
from typing import Annotated

from fastapi import Depends, Request

from core.errors import UnauthorizedError
from core.settings import Settings, get_settings


def source_for_write_key(request: Request, settings: Settings) -> str:
    """The source name for the request's write key, sent as Segment clients send it:
    HTTP Basic with the key as user name and an empty password."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        raise UnauthorizedError(
            "missing write key: send it as the HTTP Basic user name", loc=["header"]
        )
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise UnauthorizedError(
            "Authorization header is not valid Basic credentials", loc=["header"]
        ) from None
    return source_for_key(decoded.split(":", 1)[0], settings, loc=["header"])


def source_for_key(key: str, settings: Settings, *, loc: list[str]) -> str:
    source = settings.tracking.write_keys.get(key)
    if source is None:
        raise UnauthorizedError("unknown write key", loc=loc)
    return source


def require_write_key(request: Request) -> str:
    return source_for_write_key(request, get_settings())


async def require_tracking_key(request: Request) -> str:
    """The source of a tracking request. The write key comes as the HTTP Basic user
    name or, when there is no Authorization header, as ``writeKey`` in the JSON body:
    ``navigator.sendBeacon`` cannot set a header, and Segment's browser library puts
    the key in the body so that a cross-origin request needs no CORS preflight."""
    settings = get_settings()
    if "authorization" in request.headers:
        return source_for_write_key(request, settings)
    key = await _write_key_in_body(request)
    if key is None:
        raise UnauthorizedError(
            "missing write key: send it as the HTTP Basic user name "
            "or as 'writeKey' in the JSON body",
            loc=["header"],
        )
    return source_for_key(key, settings, loc=["body", "writeKey"])


async def _write_key_in_body(request: Request) -> str | None:
    try:
        body = await request.json()  # parsed once: the route has read it already
    except ValueError:
        return None
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None


def require_admin(request: Request) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expected = get_settings().admin_token.get_secret_value()
    if scheme.lower() != "bearer" or not secrets.compare_digest(token, expected):
        raise UnauthorizedError(
            "this endpoint needs the admin token as 'Authorization: Bearer <token>'",
            loc=["header"],
        )


WriteKeySource = Annotated[str, Depends(require_write_key)]
TrackingSource = Annotated[str, Depends(require_tracking_key)]
AdminOnly = Depends(require_admin)


def require_reader(request: Request) -> bool:
    """A website (write key) or an administrator (admin token); True for the admin.

    A write key is public (it is in the shop's pages), so what it may read must
    not reveal a person: callers check ``is_admin`` before personal lookups."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        require_admin(request)
        return True
    require_write_key(request)
    return False


ReaderIsAdmin = Annotated[bool, Depends(require_reader)]
