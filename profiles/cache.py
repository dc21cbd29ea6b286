"""The read model: each profile's API document, kept in Redis until it changes.

A profile read from the store runs eight queries and parses recent events; a read
from the read model is one Redis call: the reference (``email:ann@example.com`` or
an id) leads to the profile id, which leads to the document.

Every write that changes what a document shows marks the profile as touched on its
session (``touch``). When that session commits, the documents of the touched
profiles are dropped, with every reference that led to them (an identifier may have
moved to another profile), and their version goes up; a document built from the
store before that commit carries the old version and is not kept. A time limit
bounds what a missed drop (Redis away at that moment) can leave stale.
"""

import logging
import time
from collections.abc import Iterable

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.redis import get_redis
from core.settings import get_settings

logger = logging.getLogger(__name__)
TOUCHED = "touched_profiles"
# The longest a document can outlive a change whose drop was missed.
SECONDS = 60
# A Redis error, or no Redis configured (a command run without the platform).
UNAVAILABLE = (redis.RedisError, RuntimeError)
WARN_EVERY_SECONDS = 60.0
_warned: dict[str, list[float]] = {}  # message: [last warned, missed since]

# KEYS: the reference. Returns the profile id it leads to and its document.
_READ = """
local id = redis.call('GET', KEYS[1])
if not id then return {false, false} end
return {id, redis.call('GET', ARGV[1] .. id)}
"""
# KEYS: the reference. ARGV: prefix, profile id, document, version it was built
# at, seconds. Kept only if no change committed since that version.
_KEEP = """
local prefix = ARGV[1] .. ARGV[2]
if (redis.call('GET', prefix .. ':version') or '0') ~= ARGV[4] then return 0 end
redis.call('SET', prefix, ARGV[3], 'EX', ARGV[5])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[5])
redis.call('SADD', prefix .. ':refs', KEYS[1])
redis.call('EXPIRE', prefix .. ':refs', ARGV[5])
return 1
"""
# ARGV: prefix, seconds, then profile ids. Drops their documents and references.
_DROP = """
for i = 3, #ARGV do
  local prefix = ARGV[1] .. ARGV[i]
  redis.call('INCR', prefix .. ':version')
  redis.call('EXPIRE', prefix .. ':version', ARGV[2] * 10)
  local refs = redis.call('SMEMBERS', prefix .. ':refs')
  for _, ref in ipairs(refs) do redis.call('DEL', ref) end
  redis.call('DEL', prefix, prefix .. ':refs')
end
return #ARGV - 2
"""


def touch(session: Session, *profile_ids: str) -> None:
    """These profiles change in this transaction: drop their documents on commit.
    (The worker also reads this set, to recompute their stages and segments.)"""
    session.info.setdefault(TOUCHED, set()).update(profile_ids)


def lookup(ref: str) -> str | None:
    """The document the reference leads to, if the read model holds it."""
    try:
        _profile_id, document = _script(_READ)(keys=[_ref_key(ref)], args=[_prefix()])
    except UNAVAILABLE as exc:
        _warn("profile cache unavailable", exc)
        return None
    return document or None


def version_of(profile_id: str) -> str:
    """Read before building a document from the store, and passed to ``keep``;
    "" when Redis is unavailable (nothing is kept then)."""
    try:
        return str(get_redis().get(_prefix() + profile_id + ":version") or "0")
    except UNAVAILABLE:
        return ""


def keep(ref: str, profile_id: str, document: str, version: str) -> None:
    """Keep the document and the way to it from ``ref``, unless the profile changed
    since ``version`` was read (a write committed while it was built)."""
    if not version:
        return
    try:
        _script(_KEEP)(
            keys=[_ref_key(ref)],
            args=[_prefix(), profile_id, document, version, SECONDS],
        )
    except UNAVAILABLE as exc:
        _warn("profile cache unavailable", exc)


def drop(profile_ids: Iterable[str]) -> None:
    ids = sorted(profile_ids)
    if not ids:
        return
    try:
        _script(_DROP)(args=[_prefix(), SECONDS, *ids])
    except UNAVAILABLE as exc:
        _warn(f"profile cache not cleared; documents expire in {SECONDS}s", exc)


def _warn(message: str, exc: Exception) -> None:
    """Once a minute per message: with Redis away every read and commit fails, and
    a command run without the platform commits thousands of times."""
    now = time.monotonic()
    last = _warned.get(message)
    if last is not None and now - last[0] < WARN_EVERY_SECONDS:
        last[1] += 1
        return
    _warned[message] = [now, 0]
    if last is not None and last[1]:
        message = f"{message} ({last[1]:.0f} more since the last warning)"
    logger.warning(message, extra={"error": type(exc).__name__})


def _script(source: str) -> "redis.commands.core.Script":
    # Registering only hashes the script here; Redis loads it on first use.
    return get_redis().register_script(source)


def _prefix() -> str:
    # Beside the event stream, so two platforms sharing a Redis keep their own.
    return f"{get_settings().tracking.stream}:profile:"


def _ref_key(ref: str) -> str:
    return f"{get_settings().tracking.stream}:profile-ref:{ref}"


@event.listens_for(Session, "after_commit")
def _drop_touched(session: Session) -> None:
    touched = session.info.pop(TOUCHED, None)
    if touched:
        drop(touched)
