"""Readers that turn a shop's catalog export into ``ProductCreate`` records.

Each reader yields records for the products a shopper can see, with their variants
folded in, and a ``RowError`` (line number and reason) for every row it cannot use,
so one bad row never stops an import.
"""

import csv
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

from catalog.models import ProductCreate, Variant

FORMATS = ("magento", "magento-simple")
_INTERNAL_ATTRIBUTES = {"has_options", "required_options"}
_ROOT_CATEGORY = "Default Category"
_SLUG_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def read_catalog(path: Path, fmt: str) -> Iterator[ProductCreate | RowError]:
    if fmt not in FORMATS:
        raise ValueError(
            f"unknown catalog format {fmt!r}; accepted: {', '.join(FORMATS)}"
        )
    return read_magento(path) if fmt == "magento" else read_magento_simple(path)


def clean_text(value: str) -> str:
    """Plain text from an HTML fragment: no tags, entities decoded, spaces folded."""
    text = BeautifulSoup(value or "", "html.parser").get_text(" ")
    return " ".join(html.unescape(text).split())


def read_magento(path: Path) -> Iterator[ProductCreate | RowError]:
    """Magento 2 product-import CSV: configurable parents with simple variants."""
    parents: list[tuple[int, dict[str, str]]] = []
    variants: dict[str, Variant] = {}
    for line, row in _rows(path):
        if not row.get("sku"):
            yield RowError(line, "sku is empty")
        elif row.get("visibility") == "Not Visible Individually":
            variants[row["sku"]] = _variant(row)
        else:
            parents.append((line, row))

    for line, row in parents:
        try:
            yield _product(row, variants)
        except (ValueError, KeyError) as exc:
            yield RowError(line, f"sku {row['sku']!r}: {exc}")


def read_magento_simple(path: Path) -> Iterator[ProductCreate | RowError]:
    """Magento's sample-data layout for simple products (its "Gear" files): a
    ``category`` cell of newline-separated parent and child names, attribute columns
    with newline-separated values, and no variants."""
    for line, row in _rows(path):
        if not row.get("sku"):
            yield RowError(line, "sku is empty")
            continue
        try:
            yield _simple_product(row)
        except (ValueError, KeyError) as exc:
            yield RowError(line, f"sku {row['sku']!r}: {exc}")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Each row with the line it ends on (a quoted cell may span lines)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


_SIMPLE_NON_ATTRIBUTES = {
    "category", "name", "sku", "price", "qty", "description", "special_price",
    "attribute_set", "visibility", "url_key",
}  # fmt: skip


def _simple_product(row: dict[str, str]) -> ProductCreate:
    names = [n.strip() for n in row.get("category", "").split("\n") if n.strip()]
    # Parent and child in pairs: "Gear\nBags\nCollections\nNew" is two paths.
    categories = ["/".join(names[i : i + 2]) for i in range(0, len(names), 2)]
    attributes: dict[str, Any] = {}
    for key, raw in row.items():
        if key in _SIMPLE_NON_ATTRIBUTES or key is None:
            continue
        values = [html.unescape(v.strip()) for v in (raw or "").split("\n")]
        values = [v for v in values if v]
        if not values:
            continue
        if values == ["1"]:
            values = ["Yes"]  # flags such as eco_collection or new
        attributes[key] = values if len(values) > 1 else values[0]
    qty = int(float(row.get("qty") or 0))
    return ProductCreate(
        sku=row["sku"],
        name=clean_text(row["name"]),
        url_key=_slug(row.get("url_key") or row["name"]),
        description=clean_text(row.get("description", "")),
        description_html=row.get("description", ""),
        categories=categories,
        price=_price(row.get("price", "")),
        qty=qty,
        in_stock=qty > 0,
        attributes=attributes,
    )


def _slug(value: str) -> str:
    return "-".join(_SLUG_WORD.findall(value.lower()))


def _product(row: dict[str, str], variants: dict[str, Variant]) -> ProductCreate:
    price = _price(row.get("price", ""))
    linked = [variants[sku] for sku in _variation_skus(row) if sku in variants]
    qty = sum(v.qty for v in linked) if linked else int(float(row.get("qty") or 0))
    in_stock = (
        any(v.in_stock for v in linked) if linked else row.get("is_in_stock") == "1"
    )
    return ProductCreate(
        sku=row["sku"],
        name=clean_text(row["name"]),
        url_key=row.get("url_key") or row["sku"].lower(),
        description=clean_text(row.get("description", "")),
        description_html=row.get("description", ""),
        categories=_categories(row.get("categories", "")),
        price=price,
        qty=qty,
        in_stock=in_stock,
        image=row.get("base_image") or None,
        attributes=_attributes(row.get("additional_attributes", "")),
        variants=[v.model_dump() for v in linked],
    )


def _price(value: str) -> float:
    try:
        price = float(value)
    except ValueError:
        raise ValueError(f"price {value!r} is not a number") from None
    if price < 0:
        raise ValueError(f"price {value!r} is negative")
    return price


def _variant(row: dict[str, str]) -> Variant:
    attributes = _attributes(row.get("additional_attributes", ""))
    return Variant(
        sku=row["sku"],
        size=attributes.get("size"),
        color=attributes.get("color"),
        qty=int(float(row.get("qty") or 0)),
        in_stock=row.get("is_in_stock") == "1",
    )


def _variation_skus(row: dict[str, str]) -> list[str]:
    skus = []
    for variation in filter(None, row.get("configurable_variations", "").split("|")):
        fields = dict(
            part.split("=", 1) for part in variation.split(",") if "=" in part
        )
        if "sku" in fields:
            skus.append(fields["sku"])
    return skus


def _categories(value: str) -> list[str]:
    paths = []
    for path in value.split(","):
        path = path.strip().removeprefix(_ROOT_CATEGORY).strip("/")
        if path and path not in paths:
            paths.append(path)
    return paths


def _attributes(value: str) -> dict[str, Any]:
    """``a=x,b=y|z`` into ``{"a": "x", "b": ["y", "z"]}``; a comma inside a value
    (a piece without ``=``) belongs to the value before it."""
    pairs: list[list[str]] = []
    for piece in value.split(","):
        if "=" in piece:
            pairs.append(piece.split("=", 1))
        elif pairs:
            pairs[-1][1] += "," + piece
    attributes: dict[str, Any] = {}
    for key, raw in pairs:
        if key in _INTERNAL_ATTRIBUTES or raw == "":
            continue
        values = [html.unescape(v) for v in raw.split("|")]
        attributes[key] = values if len(values) > 1 else values[0]
    return attributes


@dataclass(frozen=True)
class Review:
    sku: str
    rating: int


def read_reviews(path: Path) -> Iterator[Review | RowError]:
    """Magento's review export: one row per review, ``sku`` and ``rating_value``
    (1 to 5). The text and the reviewer are not kept: only counts and averages."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"sku", "rating_value"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path.name} has no column {', '.join(sorted(missing))}")
        for row in reader:
            line = reader.line_num
            try:
                rating = int(row["rating_value"])
            except ValueError:
                yield RowError(line, f"rating {row['rating_value']!r} is not a number")
                continue
            if not row["sku"]:
                yield RowError(line, "sku is empty")
            elif not 1 <= rating <= 5:
                yield RowError(line, f"rating {rating} is not between 1 and 5")
            else:
                yield Review(row["sku"], rating)
