"""Typed identifiers: parsing references such as ``email:ann@example.com`` and
normalising values so the same person is found however a source spells them."""

import phonenumbers

from profiles.errors import InvalidIdentityError
from profiles.models import IdentityType

ACCEPTED_TYPES = ", ".join(t.value for t in IdentityType)


_PHONE_TYPES = (IdentityType.phone, IdentityType.whatsapp_id)


def normalise(identity_type: IdentityType, value: str) -> str:
    """The one spelling of an identifier; "" when it is not a usable one (a phone
    number that cannot be a number anywhere)."""
    value = value.strip()
    if identity_type is IdentityType.email:
        return value.lower()
    if identity_type in _PHONE_TYPES:
        return phone_e164(value)
    return value


def phone_e164(value: str) -> str:
    """E.164 (+31612345678) through libphonenumber. Numbers without a country code
    are read in the shop's default region; WhatsApp ids are digits with one."""
    from core.settings import get_settings

    digits = value.lstrip("+")
    if digits.isdigit() and not value.startswith(("0", "+")) and len(digits) > 10:
        value = "+" + digits  # a WhatsApp id: country code without the plus
    try:
        number = phonenumbers.parse(value, get_settings().identity.default_region)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
    normalised = normalise(identity_type, value)
    if not normalised:
        problem = (
            "has an empty value"
            if not value.strip()
            else (f"value {value!r} is not a usable {identity_type.value}")
        )
        raise InvalidIdentityError(
            f"identity {raw_type!r} {problem}", loc=["path", "ref"]
        )
    return identity_type, normalised
