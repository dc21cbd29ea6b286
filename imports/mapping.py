"""Loading a YAML column mapping and checking it, with the line of every problem.

A mapping is read from a shipped name (``imports/mappings/<name>.yml``) or a file
path. PyYAML's composed nodes keep their marks, so each key of the mapping is known
with its line, and a problem found by the schema is reported where it is written.
"""

import codecs
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from core.yaml_files import Loc, compose, line_of, validate
from imports.errors import MappingError, UnknownMappingError
from imports.models import (
    EVENT_KINDS,
    ContactMapping,
    Mapping,
    OrderMapping,
)

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
_MODELS: dict[str, type[OrderMapping] | type[ContactMapping]] = {
    "orders": OrderMapping,
    "store-purchases": OrderMapping,
    "contacts": ContactMapping,
}
_TEXT_ONLY_OPTIONS = ("delimiter", "header", "names", "encoding")


def shipped_names() -> list[str]:
    return sorted(path.stem for path in MAPPINGS_DIR.glob("*.yml"))


def resolve(name_or_path: str) -> Path:
    """A shipped mapping by name, or a mapping file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yml", ".yaml") or len(path.parts) > 1:
        if not path.is_file():
            raise UnknownMappingError(
                f"mapping file {name_or_path} does not exist", loc=["body", "mapping"]
            )
        return path
    return shipped_path(name_or_path)


def shipped_path(name: str) -> Path:
    if name not in shipped_names():
        raise UnknownMappingError(
            f"no shipped mapping is named {name!r}; shipped: "
            f"{', '.join(shipped_names())} (or give the path of a .yml file)",
            loc=["body", "mapping"],
        )
    return MAPPINGS_DIR / f"{name}.yml"


def load(name_or_path: str, *, kind: str) -> Mapping:
    path = resolve(name_or_path)
    name = path.name if path.parent == MAPPINGS_DIR else name_or_path
    return parse(path.read_text(encoding="utf-8"), name=name, kind=kind)


def parse(text: str, *, name: str, kind: str | None = None) -> Mapping:
    """The mapping in ``text``; ``kind``, when given, is the kind it must be for."""
    tree, lines = compose(text, name, error=MappingError)
    model = _model_for(tree, lines, name)
    mapping = validate(tree, lines, model, name=name, error=MappingError)
    problems = [(line_of(lines, loc), reason) for loc, reason in _rules(mapping)]
    if problems:
        raise MappingError(name, problems)
    if kind is not None and mapping.kind != kind:
        for_kind = [n for n in shipped_names() if _shipped_kind(n) == kind]
        reason = (
            f"this mapping is for {mapping.kind}, not {kind}; shipped mappings "
            f"for {kind}: {', '.join(for_kind) or 'none'}"
        )
        raise MappingError(name, [(line_of(lines, ("kind",)), reason)])
    return mapping


def _model_for(
    tree: Any, lines: dict[Loc, int], name: str
) -> type[OrderMapping] | type[ContactMapping]:
    if not isinstance(tree, dict):
        raise MappingError(name, [(1, "a mapping is a set of `key: value` lines")])
    kind = tree.get("kind")
    if kind not in _MODELS:
        got = "is missing" if kind is None else f"{kind!r} is not known"
        raise MappingError(
            name,
            [
                (
                    line_of(lines, ("kind",)),
                    f"kind {got}; accepted: {', '.join(EVENT_KINDS)}",
                )
            ],
        )
    return _MODELS[kind]


def _rules(mapping: Mapping) -> list[tuple[Loc, str]]:
    """What the schema alone cannot say: options that go together."""
    problems: list[tuple[Loc, str]] = []
    options = mapping.file
    if options.format == "parquet":
        for option in _TEXT_ONLY_OPTIONS:
            if option in options.model_fields_set:
                problems.append(
                    (("file", option), f"file.{option} does not apply to parquet")
                )
    else:
        if options.delimiter is not None and options.format != "csv":
            problems.append(
                (("file", "delimiter"), "file.delimiter applies to csv only")
            )
        if not _known_encoding(options.encoding):
            problems.append(
                (
                    ("file", "encoding"),
                    f"file.encoding {options.encoding!r} is not known; e.g. utf-8, "
                    "latin-1, cp1252",
                )
            )
        if not options.header and not options.names:
            problems.append(
                (("file", "header"), "file.names is required when header is false")
            )
    if mapping.timezone != "UTC":
        try:
            ZoneInfo(mapping.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                (
                    ("timezone",),
                    f"timezone {mapping.timezone!r} is not known; use an IANA name "
                    "such as 'Europe/Amsterdam' or 'UTC'",
                )
            )
    if isinstance(mapping, OrderMapping):
        problems.extend(_order_rules(mapping))
    return problems


def _order_rules(mapping: OrderMapping) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    columns = mapping.columns
    if mapping.currency is None and columns.currency is None:
        problems.append(
            (
                ("currency",),
                "currency is required: a code such as USD, or columns.currency",
            )
        )
    if columns.total is None and columns.price is None and columns.line_total is None:
        problems.append(
            (
                ("columns",),
                "columns.total is required unless columns.price or "
                "columns.line_total gives the lines' prices to add up",
            )
        )
    if mapping.kind == "store-purchases" and columns.store_id is None:
        problems.append((("columns",), "columns.store_id is required for stores"))
    if mapping.kind == "orders" and columns.store_id is not None:
        problems.append(
            (
                ("columns", "store_id"),
                "columns.store_id applies to store-purchases only",
            )
        )
    return problems


def _known_encoding(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _shipped_kind(name: str) -> str | None:
    try:
        tree = yaml.safe_load((MAPPINGS_DIR / f"{name}.yml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return tree.get("kind") if isinstance(tree, dict) else None
