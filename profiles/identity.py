"""Typed identifiers: parsing references such as ``email:ann@example.com`` and
normalising values so the same person is found however a source spells them."""

from profiles.errors import InvalidIdentityError
from profiles.models import IdentityType

ACCEPTED_TYPES = ", ".join(t.value for t in IdentityType)


def normalise(identity_type: IdentityType, value: str) -> str:
    value = value.strip()
    if identity_type is IdentityType.email:
        return value.lower()
    return value


def parse_type(raw: str) -> IdentityType:
    try:
        return IdentityType(raw)
    except ValueError:
        raise InvalidIdentityError(
            f"unknown identity type {raw!r}; accepted: {ACCEPTED_TYPES}",
            loc=["path", "ref"],
        ) from None


def parse_ref(ref: str) -> tuple[IdentityType, str] | str:
    """A profile id, or ``type:value`` for a lookup by identity."""
    if any(ord(c) < 32 for c in ref):
        raise InvalidIdentityError(
            "profile reference contains a control character", loc=["path", "ref"]
        )
    if ":" not in ref:
        if not ref.strip():
            raise InvalidIdentityError(
                "profile reference is empty", loc=["path", "ref"]
            )
        return ref
    raw_type, value = ref.split(":", 1)
    identity_type = parse_type(raw_type)
    value = normalise(identity_type, value)
    if not value:
        raise InvalidIdentityError(
            f"identity {raw_type!r} has an empty value", loc=["path", "ref"]
        )
    return identity_type, value
