"""The shop's own words in a message: categories, colours, sizes, materials, genders
and product names, found by dictionary match.

Plain Python, so Rasa's environment runs it inside the NLU pipeline and the platform's
environment imports it to build the vocabulary and to test it. The vocabulary is the
JSON that ``cdp assistant vocabulary`` writes from the catalog:
``{"entities": {entity: {canonical value: [terms]}}}``.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VOCABULARY_PATH = Path(__file__).with_name("vocabulary.json")

# Entities whose terms also match in the plural ("jackets", "juno jackets").
INFLECTED = frozenset({"category", "product"})

# Size terms that are ordinary words or numbers elsewhere ("a small bag", "under 32")
# count as sizes only next to a word that says so: "size M", "in medium", "32 waist".
# A number needs "size" or "waist": "in 30 days" is no size.
_SIZE_BEFORE = frozenset({"size", "sizes", "waist"})
_SIZE_AFTER = frozenset({"size", "waist", "sized"})
_SIZE_LIST = frozenset({"or", "and", ",", "/"})
_FREE_SIZE = re.compile(r"^(\d?x+[sl]|extra .+|x-.+)$")

# Nouns in -ie, whose plural in -ies drops only the "s" ("hoodies": hoodie, not hoody).
_IE_NOUNS = frozenset({"hoodie", "beanie", "bootie", "onesie", "tie", "cookie"})
# Plural-only nouns: the canonical value keeps the -s.
PLURAL_ONLY = frozenset(
    {"pants", "shorts", "tights", "leggings", "trousers", "sweatpants", "capris"}
)

_TOKEN = re.compile(r"\w+(?:['\u2019\-]\w+)*|[,/]", re.UNICODE)


@dataclass(frozen=True)
class Match:
    entity: str
    value: str
    start: int
    end: int
    text: str


def singular(word: str) -> str:
    """The singular of an English noun, for category names such as "Hoodies"."""
    lower = word.lower()
    if lower in PLURAL_ONLY or not lower.endswith("s") or lower.endswith("ss"):
        return word
    if lower.endswith("ies") and lower[:-1] not in _IE_NOUNS:
        return word[:-3] + "y"
    if lower.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1]


def plural(word: str) -> str:
    lower = word.lower()
    if lower.endswith("s") and not lower.endswith("ss"):
        return word  # already plural, or a plural-only noun
    if lower.endswith(("ch", "sh", "ss", "x", "z")):
        return word + "es"
    if lower.endswith("y") and lower[-2:-1] not in set("aeiou"):
        return word[:-1] + "ies"
    return word + "s"


def normalise(text: str) -> str:
    """Lower case without trademark signs and with plain apostrophes."""
    text = text.replace("™", "").replace("®", "").replace("\u2019", "'")
    return re.sub(r"\s+", " ", text).strip().casefold()


def tokens(text: str) -> list[tuple[str, int, int]]:
    """Words with their character offsets, on the normalised text's alphabet."""
    return [(normalise(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def load_vocabulary(path: Path = VOCABULARY_PATH) -> dict[str, Any]:
    vocabulary = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(vocabulary.get("entities"), dict):
        raise ValueError(
            f"{path}: expected an object with 'entities', got {vocabulary!r:.80}"
        )
    return vocabulary


class TermMatcher:
    """Finds the longest vocabulary terms in a text, left to right, without overlap."""

    def __init__(self, vocabulary: dict[str, Any]) -> None:
        self._terms: dict[tuple[str, ...], tuple[str, str]] = {}
        for entity, values in sorted(vocabulary["entities"].items()):
            for value, terms in sorted(values.items()):
                for term in terms:
                    for form in _forms(term, inflect=entity in INFLECTED):
                        key = tuple(t for t, _, _ in tokens(form))
                        # The first claim on a term wins; the exporter keeps terms
                        # unique, so this only guards hand-edited files.
                        self._terms.setdefault(key, (entity, value))
        self._longest = max((len(k) for k in self._terms), default=0)

    def find(self, text: str) -> list[Match]:
        words = tokens(text)
        found: list[Match] = []
        position = 0
        while position < len(words):
            match = self._longest_at(text, words, position, found)
            if match is None:
                position += 1
                continue
            found.append(match[0])
            position = match[1]
        return found

    def _longest_at(
        self,
        text: str,
        words: list[tuple[str, int, int]],
        position: int,
        found: list[Match],
    ) -> tuple[Match, int] | None:
        stop = min(len(words), position + self._longest)
        for end in range(stop, position, -1):
            key = tuple(w for w, _, _ in words[position:end])
            claim = self._terms.get(key)
            if claim is None:
                continue
            entity, value = claim
            if entity == "size" and not _size_in_context(
                text, words, position, end, found
            ):
                continue
            start, stop_char = words[position][1], words[end - 1][2]
            match = Match(entity, value, start, stop_char, text[start:stop_char])
            return match, end
        return None


def _forms(term: str, *, inflect: bool) -> set[str]:
    term = normalise(term)
    if not inflect:
        return {term}
    head, _, last = term.rpartition(" ")
    return {term, f"{head} {plural(last)}".strip()}


def _size_in_context(
    text: str,
    words: list[tuple[str, int, int]],
    start: int,
    end: int,
    found: list[Match],
) -> bool:
    term = " ".join(w for w, _, _ in words[start:end])
    if _FREE_SIZE.match(term):
        return True
    raw = text[words[start][1] : words[end - 1][2]]
    if len(raw) == 1 and raw.isupper() and raw != "I":
        return True  # "only size M", "an L please"; a lone capital is a size here
    before = words[start - 1][0] if start > 0 else ""
    after = words[end][0] if end < len(words) else ""
    if before in _SIZE_BEFORE or after in _SIZE_AFTER:
        return True
    if not term.isdigit() and (
        before == "in"
        or (before in {"a", "an"} and start > 1 and words[start - 2][0] == "in")
    ):
        return True  # "in medium", "in an L", "in a small"
    if before in _SIZE_LIST and start > 1 and found:
        last = found[-1]  # "size M or L", "sizes S, M"
        return last.entity == "size" and last.end == words[start - 2][2]
    return False
