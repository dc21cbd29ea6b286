"""The assistant's vocabulary, built from the catalog.

The catalog names the shop's categories, colours, sizes, materials, brands,
departments by gender and products; this module turns them into the terms the NLU
pipeline's catalog extractor matches (``assistant/nlu/vocabulary.json``), with the
brands shoppers may ask for that the shop does not carry (``assistant/brands.py``)
and the occasions they shop for (``assistant/occasions.py``). A few plain English
synonyms ("t-shirt" for tee, "grey" for gray) are added for values the catalog has, so
a catalog without watches gets no watch words. Training reads the file, and the
training fingerprint covers it: a changed catalog, once exported, retrains the model.
The running assistant follows the catalog without training: the api publishes the
vocabulary again when the catalog changes (``VocabularyPublisher``) and the catalog
extractor reads the new file.
"""

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlmodel import Session

from assistant.brands import OTHER_BRANDS
from assistant.errors import EmptyCatalogError
from assistant.nlu.catalog_terms import VOCABULARY_PATH, normalise, singular
from assistant.occasions import OCCASIONS
from catalog import service as catalog_service
from catalog.models import Product

logger = logging.getLogger(__name__)

# Top-level categories that name who a department is for, and the value they get.
GENDERS = {"men": "men", "man": "men", "women": "women", "woman": "women"}
# Top-level categories that group products for marketing, not by kind.
MARKETING_ROOTS = frozenset({"collections", "promotions", "sale", "sales", "new"})
# Words that name a category only in the plural: "tops", but "top rated"; the
# synonyms give the plurals.
PLURAL_ONLY_TERMS = frozenset({"top", "bottom", "short", "gear"})
# When one term could be two things, the earlier entity keeps it.
PRIORITY = (
    "product", "category", "material", "brand", "color", "gender", "size", "occasion"
)  # fmt: skip

SYNONYMS: dict[str, dict[str, list[str]]] = {
    "category": {
        "jacket": [
            "coat", "windbreaker", "wind breaker", "rain jacket", "raincoat",
            "rain coat", "shell", "shell jacket", "soft shell", "softshell",
            "hard shell", "anorak", "parka", "outerwear", "jackshirt",
        ],
        "hoodie": ["hoody", "hooded sweatshirt", "hooded top", "zip hoodie"],
        "sweatshirt": ["sweater", "jumper", "crewneck", "pullover", "fleece top"],
        "tee": [
            "t-shirt", "t shirt", "tshirt", "tee shirt", "shirt", "tee-shirt",
            "long sleeve tee", "short sleeve tee",
        ],
        "tank": ["tank top", "singlet", "sleeveless top", "camisole", "cami"],
        "bra": ["sports bra", "bra top", "crop top"],
        "pants": [
            "trousers", "leggings", "joggers", "sweatpants", "track pants",
            "tights", "capri", "capris", "jogging bottoms", "sweats",
        ],
        "shorts": ["short pants", "bike shorts"],
        "top": ["tops"],
        "bottom": ["bottoms"],
        "gear": ["accessories", "accessory"],
        "bag": [
            "backpack", "rucksack", "duffel", "duffle", "duffel bag", "tote",
            "messenger bag", "gym bag", "holdall", "shoulder bag", "daypack",
            "luggage",
        ],
        "watch": ["wristwatch", "smartwatch", "sport watch", "timepiece"],
        "fitness equipment": [
            "equipment", "gym equipment", "workout equipment", "exercise equipment",
            "yoga brick", "yoga block", "foam roller", "jump rope", "skipping rope",
            "resistance band", "exercise band", "strength band", "water bottle",
            "pushup grips", "push-up grips", "exercise ball", "cardio ball",
        ],
    },
    "color": {
        "gray": ["grey", "charcoal"],
        "blue": ["navy", "navy blue"],
        "purple": ["violet"],
        "brown": ["tan"],
    },
    "gender": {
        "men": [
            "man", "mens", "men's", "mans", "male", "males", "guys", "guy", "gents",
            "gentlemen",
        ],
        "women": [
            "woman", "womens", "women's", "womans", "ladies", "lady", "ladies'",
            "female", "females", "girls",
        ],
    },
    "size": {
        "XS": ["extra small", "x-small", "xsmall", "extra-small"],
        "S": ["small"],
        "M": ["medium"],
        "L": ["large"],
        "XL": ["extra large", "x-large", "xlarge", "extra-large"],
        "XXL": ["xxl", "2xl", "double extra large"],
    },
    "material": {
        "polyester": ["poly"],
        "spandex": ["elastane"],
        "wool": ["merino", "woolen", "woollen", "wool blend"],
        "microfiber": ["microfibre"],
        "cocona performance fabric": ["cocona"],
        "cooltech": ["cool tech"],
        "lumatech": ["luma tech"],
        "heattec": ["heat tec", "heattech"],
        "evercool": ["ever cool"],
        "stainless steel": ["steel"],
    },
}  # fmt: skip


def export_vocabulary(session: Session, path: Path = VOCABULARY_PATH) -> dict[str, Any]:
    """Write the vocabulary of the active catalog to ``path`` and return it."""
    products = catalog_service.list_active(session)
    if not products:
        # An empty vocabulary would silently train a model that knows no product.
        raise EmptyCatalogError(
            "the catalog has no active product: import one first "
            "(cdp import catalog FILE)"
        )
    vocabulary = build_vocabulary(products)
    write_if_changed(path, dumps(vocabulary))
    counts = {entity: len(values) for entity, values in vocabulary["entities"].items()}
    logger.info("assistant vocabulary written", extra={"path": str(path), **counts})
    return vocabulary


class VocabularyPublisher:
    """Keeps the file the running assistant follows (``CDP_RASA__VOCABULARY_PATH``)
    in step with the catalog, for the api's index poll: a new category, colour or
    product is understood in the chat within seconds, without training again (the
    catalog components are dictionaries). Most catalog changes are stock and
    prices; the vocabulary is built again only when a change touches what it reads
    of a product, and written only when it differs. An empty catalog writes
    nothing, and the assistant keeps the words it has."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: dict[str, tuple[Any, ...]] | None = None  # sku: words_read(p)

    def publish(self, session: Session) -> bool:
        """Write the active catalog's vocabulary if it differs; True when written."""
        products = catalog_service.list_active(session)
        self._read = {p.sku: words_read(p) for p in products}
        if not products:
            return False
        vocabulary = build_vocabulary(products)
        if not write_if_changed(self.path, dumps(vocabulary)):
            return False
        counts = {e: len(values) for e, values in vocabulary["entities"].items()}
        logger.info(
            "assistant vocabulary published", extra={"path": str(self.path), **counts}
        )
        return True

    def catalog_changed(self, session: Session, changed: Iterable[Product]) -> bool:
        """Publish again if one of these changed products changes the words."""
        if self._read is not None and all(
            self._read.get(p.sku) == (words_read(p) if p.active else None)
            for p in changed
        ):
            return False
        return self.publish(session)


def words_read(product: Product) -> tuple[Any, ...]:
    """What ``build_vocabulary`` reads of a product."""
    return (
        product.name,
        tuple(product.categories),
        tuple(product.colors),
        tuple(_values(product, "color")),
        tuple(product.sizes),
        tuple(_values(product, "material")),
        tuple(_values(product, "activity")),
        product.brand,
    )


def write_if_changed(path: Path, text: str) -> bool:
    """Replace the file with ``text`` in one step, so a reader never sees half of
    it; an unchanged text leaves the file (and its time) alone."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)  # Rasa may run as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def dumps(vocabulary: dict[str, Any]) -> str:
    """The file's text: stable, so an unchanged catalog changes no byte."""
    return json.dumps(vocabulary, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build_vocabulary(products: Iterable[Product]) -> dict[str, Any]:
    found: dict[str, dict[str, set[str]]] = {entity: {} for entity in PRIORITY}
    brands: dict[str, str] = {}  # carried: casefolded name, spelling
    count = 0
    for product in products:
        count += 1
        _add_categories(found, product.categories)
        for color in product.colors or _values(product, "color"):
            _add(found, "color", normalise(color), normalise(color))
        for size in product.sizes:
            _add(found, "size", size.strip().upper(), size)
        for material in _values(product, "material"):
            _add(found, "material", normalise(material), normalise(material))
        for activity in _values(product, "activity"):
            _add(found, "occasion", normalise(activity), normalise(activity))
        if product.brand:  # one spelling per brand: the first product's
            brand = brands.setdefault(product.brand.casefold(), product.brand)
            _add_brand(found, brand, [brand])
        _add_product(found, product.name)
    for occasion, terms in OCCASIONS.items():
        for term in terms:
            _add(found, "occasion", occasion, term)
    for brand, terms in OTHER_BRANDS.items():
        # A carried brand keeps the catalog's spelling and gains the list's terms
        # ("addidas" for Adidas) from the moment the shop carries it.
        _add_brand(found, brands.get(brand.casefold(), brand), terms)
    _add_synonyms(found)
    return {
        "about": "Catalog terms for the NLU pipeline; `cdp assistant vocabulary` "
        "writes this file from the catalog.",
        "products": count,
        "entities": _unique_terms(found),
    }


def _add(
    found: dict[str, dict[str, set[str]]], entity: str, value: str, term: str
) -> None:
    if value:
        found[entity].setdefault(value, set()).add(normalise(term))


def _add_brand(
    found: dict[str, dict[str, set[str]]], brand: str, terms: list[str]
) -> None:
    """The brand as spelt where it came from, under its terms: "Levi's" also
    as "levis", "The North Face" also as "north face"."""
    for term in map(normalise, terms):
        variants = {term, term.replace("'", ""), term.removeprefix("the ")}
        for variant in variants:
            _add(found, "brand", brand, variant)


def _add_categories(found: dict[str, dict[str, set[str]]], paths: list[str]) -> None:
    for path in paths:
        segments = [s.strip() for s in path.split("/") if s.strip()]
        if not segments or segments[0].lower() in MARKETING_ROOTS:
            continue
        if segments[0].lower() in GENDERS:
            root = segments.pop(0)
            _add(found, "gender", GENDERS[root.lower()], root)
        for segment in segments:
            for part in re.split(r"\s*(?:&|,|\band\b)\s*", segment):
                if part:
                    name = normalise(part)
                    head, _, last = name.rpartition(" ")
                    value = f"{head} {singular(last)}".strip()
                    _add(found, "category", value, value)
                    _add(found, "category", value, name)


def _add_product(found: dict[str, dict[str, set[str]]], name: str) -> None:
    # "Ryker LumaTech™ Tee (V-neck)": the name, with and without what is in brackets,
    # and the first and last word ("ryker tee"), which shoppers often type.
    plain = normalise(re.sub(r"[()]", " ", name))
    short = normalise(re.sub(r"\(.*?\)", " ", name))
    terms = {plain, short}
    words = short.split()
    if len(words) >= 3:
        terms.add(f"{words[0]} {words[-1]}")
    for term in terms:
        _add(found, "product", name, term)


def _add_synonyms(found: dict[str, dict[str, set[str]]]) -> None:
    for entity, values in SYNONYMS.items():
        for value, terms in values.items():
            if value in found[entity]:
                found[entity][value].update(normalise(t) for t in terms)
    for value, terms in found["color"].items():
        if value not in ("black", "white"):
            terms.update({f"light {value}", f"dark {value}"})
    for terms in found["category"].values():
        terms.difference_update(PLURAL_ONLY_TERMS)


def _unique_terms(
    found: dict[str, dict[str, set[str]]],
) -> dict[str, dict[str, list[str]]]:
    """Each term names one value: a term two products share names neither, and a
    term two entities share goes to the one earlier in ``PRIORITY``."""
    owners: dict[str, set[tuple[str, str]]] = {}
    for entity in PRIORITY:
        for value, terms in found[entity].items():
            for term in terms:
                owners.setdefault(term, set()).add((entity, value))
    result: dict[str, dict[str, list[str]]] = {}
    for entity in PRIORITY:
        result[entity] = {}
        for value, terms in sorted(found[entity].items()):
            kept = sorted(t for t in terms if _owner(owners[t]) == (entity, value))
            if kept:
                result[entity][value] = kept
    return result


def _owner(claims: set[tuple[str, str]]) -> tuple[str, str] | None:
    best = min(PRIORITY.index(entity) for entity, _ in claims)
    mine = [c for c in claims if PRIORITY.index(c[0]) == best]
    return mine[0] if len(mine) == 1 else None


def _values(product: Product, key: str) -> list[str]:
    value = product.attributes.get(key)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
