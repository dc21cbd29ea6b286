"""Price limits in a message: "under 50", "between $20 and $40", "around 50 euros".

Turns them into ``min_price`` and ``max_price`` with numeric values, and "cheaper" or
"more expensive" without a number into ``price_direction``. Plain Python, imported by
the NLU component in Rasa's environment and by the tests in the platform's.
"""

import re
from dataclasses import dataclass

# "around 50" means 50 give or take this share.
AROUND = 0.2

_WORD_NUMBERS = {
    "ten": 10, "fifteen": 15, "twenty": 20, "twenty-five": 25, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "seventy-five": 75,
    "eighty": 80, "ninety": 90, "a hundred": 100, "one hundred": 100, "hundred": 100,
    "a hundred and fifty": 150, "two hundred": 200, "three hundred": 300,
}  # fmt: skip
_CURRENCY_SIGN = r"[$€£]"
_CURRENCY_WORD = r"(?:usd|eur|gbp|dollars?|bucks|euros?|pounds?|quid|\$|€|£)(?![a-z])"
# A number followed by one of these is a count or a time, not a price.
_NOT_MONEY = (
    r"(?:days?|weeks?|hours?|hrs?|minutes?|mins?|months?|years?|items?|pieces?|pcs|"
    r"orders?|kgs?|lbs?|km|miles?|%|percent|times|am|pm|cm|mm|inch(?:es)?|liters?|"
    r"litres?|oz|th|st|nd|rd|waist|foot|feet|ft|years? old|y/o|yo)(?![a-z])"
)
_WORDS = "|".join(sorted((re.escape(w) for w in _WORD_NUMBERS), key=len, reverse=True))
_NUMBER = rf"(?:\d{{1,3}}(?:,\d{{3}})+|\d+(?:[.,]\d{{1,2}})?|{_WORDS})"


def _amount(name: str) -> str:
    """An amount with an optional currency before or after it, captured as ``name``."""
    return (
        rf"(?P<{name}>{_CURRENCY_SIGN}?\s?{_NUMBER}(?:\s?{_CURRENCY_WORD})?)"
        rf"(?!\s*{_NOT_MONEY})(?![\d.,]*\d)"
    )


def _before(words: str, group: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w])(?:{words})\s*{_amount(group)}")


def _after(words: str, group: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.,]){_amount(group)}\s*(?:{words})(?![\w])")


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "range",
        re.compile(
            rf"(?<![\w])(?:between|from|priced|range(?: of)?)\s+{_amount('low')}"
            rf"\s*(?:and|to|-|\u2013)\s*{_amount('high')}"
        ),
    ),
    (
        "bare_range",
        re.compile(
            rf"(?<!size )(?<!sizes )(?<!waist )(?<![\w.,]){_amount('low')}"
            rf"\s*(?:-|\u2013|to)\s*{_amount('high')}"
        ),
    ),
    # The negated phrases first, so "no more than 50" is not read as "more than 50".
    (
        "max",
        _before(
            r"no more than|not more than|not over|not above|no higher than", "high"
        ),
    ),
    (
        "min",
        _before(
            r"no less than|not less than|not under|not below|no cheaper than", "low"
        ),
    ),
    (
        "max",
        _before(
            r"under|below|less than|cheaper than|lower than|at most|max(?:imum)?|"
            r"up to|within|beneath|(?:my )?budget(?: is| of)?|i can spend|"
            r"i can pay|<=?",
            "high",
        ),
    ),
    (
        "min",
        _before(
            r"over|above|more than|at least|min(?:imum)?|starting (?:at|from)|"
            r"upwards of|higher than|pricier than|>=?",
            "low",
        ),
    ),
    (
        "near",
        _before(
            r"around|about|approximately|approx\.?|roughly|circa|near|close to|"
            r"in the region of|~",
            "mid",
        ),
    ),
    (
        "max",
        _after(r"(?:or|and) (?:less|under|below)|max(?:imum)?|tops|at most", "high"),
    ),
    (
        "min",
        _after(r"\+|(?:or|and) (?:more|over|up|above)|min(?:imum)?|at least", "low"),
    ),
]

_CHEAPER = re.compile(
    r"\b(?:cheaper|cheapest|cheap|less expensive|less pricey|lower[- ]priced|"
    r"more affordable|affordable|budget|inexpensive|too expensive|too pricey|"
    r"lower price|lower prices|on sale|bargain)\b"
)
_PRICIER = re.compile(
    r"\b(?:pricier|more expensive|higher[- ]end|high[- ]end|premium|more upmarket|"
    r"higher price|higher prices|fancier|too cheap|most expensive|luxury)\b"
)


# A message about the body ("I'm 180 cm and about 170 pounds") gives no budget with
# "about": its numbers are measures.
_BODY = re.compile(
    r"\b(?:weigh|weight|tall|height|chest|hips?|bust|inseam|cm|kg|lbs?)\b"
)


@dataclass(frozen=True)
class PriceMatch:
    entity: str
    value: float | str
    start: int
    end: int
    text: str


def find_prices(text: str) -> list[PriceMatch]:
    """Price entities in ``text``, with character offsets into it."""
    lowered = text.casefold()
    found: list[PriceMatch] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        if kind == "near" and _BODY.search(lowered):
            continue
        for match in pattern.finditer(lowered):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            entities = _entities(kind, match, text)
            if entities:
                found.extend(entities)
                taken.append(match.span())
    if not found:
        found.extend(_direction(text, lowered))
    return sorted(found, key=lambda m: m.start)


def _entities(kind: str, match: re.Match[str], text: str) -> list[PriceMatch]:
    if kind in ("range", "bare_range"):
        low, high = _value(match.group("low")), _value(match.group("high"))
        if low is None or high is None or low > high:
            return []
        if kind == "bare_range" and not _is_money(match):
            return []  # "2-3" alone could be anything; "$20-40" is a price
        return [
            _entity("min_price", low, match, "low", text),
            _entity("max_price", high, match, "high", text),
        ]
    if kind == "near":
        mid = _value(match.group("mid"))
        if mid is None:
            return []
        low, high = round(mid * (1 - AROUND), 2), round(mid * (1 + AROUND), 2)
        return [
            _entity("min_price", low, match, "mid", text),
            _entity("max_price", high, match, "mid", text),
        ]
    group = "high" if kind == "max" else "low"
    value = _value(match.group(group))
    if value is None:
        return []
    return [_entity(f"{kind}_price", value, match, group, text)]


def _entity(
    entity: str, value: float, match: re.Match[str], group: str, text: str
) -> PriceMatch:
    start, end = match.span(group)
    # Offsets cover whole words ("$50", "50€"), the way Rasa's tokens do.
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace() and text[end] not in "?!,;":
        end += 1
    return PriceMatch(entity, value, start, end, text[start:end])


def _value(amount: str) -> float | None:
    cleaned = re.sub(rf"{_CURRENCY_SIGN}|{_CURRENCY_WORD}", "", amount).strip()
    if cleaned in _WORD_NUMBERS:
        return float(_WORD_NUMBERS[cleaned])
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", cleaned):
        cleaned = cleaned.replace(",", "")  # 1,200
    try:
        return float(cleaned.replace(",", "."))  # 49,99
    except ValueError:
        return None


def _is_money(match: re.Match[str]) -> bool:
    return bool(re.search(rf"{_CURRENCY_SIGN}|{_CURRENCY_WORD}", match.group()))


def _direction(text: str, lowered: str) -> list[PriceMatch]:
    for value, pattern in (("cheaper", _CHEAPER), ("pricier", _PRICIER)):
        match = pattern.search(lowered)
        if match:
            start, end = match.span()
            return [PriceMatch("price_direction", value, start, end, text[start:end])]
    return []
