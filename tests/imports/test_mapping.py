from pathlib import Path

import pytest

from imports import mapping
from imports.errors import MappingError, UnknownMappingError
from imports.models import ContactMapping, OrderMapping

ORDERS = """\
kind: orders
source: webshop
file:
  format: csv
columns:
  customer_id: customer
  timestamp: created_at
  total: total
currency: EUR
"""


def problems(text: str, kind: str | None = None) -> list[str]:
    with pytest.raises(MappingError) as raised:
        mapping.parse(text, name="mine.yml", kind=kind)
    return raised.value.problems


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("cdnow-orders", "orders"),
        ("webshop-orders", "orders"),
        ("store-purchases", "store-purchases"),
        ("completejourney-transactions", "store-purchases"),
        ("completejourney-demographics", "contacts"),
        ("crm-contacts", "contacts"),
    ],
)
def test_load_shipped_mapping_is_valid_for_its_kind(name: str, kind: str) -> None:
    loaded = mapping.load(name, kind=kind)

    assert loaded.kind == kind
    assert name in mapping.shipped_names()


def test_parse_valid_orders_mapping_reads_columns_and_defaults() -> None:
    loaded = mapping.parse(ORDERS, name="mine.yml", kind="orders")

    assert isinstance(loaded, OrderMapping)
    assert (loaded.columns.customer_id, loaded.currency) == ("customer", "EUR")
    assert (loaded.file.header, loaded.timezone) == (True, "UTC")


def test_parse_unknown_key_is_rejected_with_its_line_and_the_accepted_keys() -> None:
    text = ORDERS.replace("  total: total\n", "  total: total\n  totl: total\n")

    assert problems(text) == [
        "mine.yml, line 9: unknown key 'totl' in columns; accepted: customer_id, "
        "timestamp, order_id, total, revenue, discount, currency, store_id, "
        "product_id, sku, quantity, price, line_total, category"
    ]


def test_parse_unknown_top_level_key_names_the_accepted_ones() -> None:
    [problem] = problems(ORDERS + "colums: {}\n")

    assert problem.startswith("mine.yml, line 10: unknown key 'colums' in the mapping")
    assert "accepted: source, file, date_format, timezone, kind, columns" in problem


def test_parse_wrong_type_is_rejected_with_its_line() -> None:
    text = ORDERS.replace("  format: csv\n", '  format: csv\n  header: "no"\n')

    assert problems(text) == [
        "mine.yml, line 5: file.header: Input should be a valid boolean, got 'no'"
    ]


def test_parse_unknown_format_lists_the_accepted_formats() -> None:
    [problem] = problems(ORDERS.replace("format: csv", "format: xlsx"))

    assert problem.startswith("mine.yml, line 4: file.format: ")
    assert "'csv', 'whitespace' or 'parquet'" in problem


def test_parse_missing_required_column_names_it_at_its_section() -> None:
    assert problems(ORDERS.replace("  customer_id: customer\n", "")) == [
        "mine.yml, line 5: columns.customer_id is required"
    ]


def test_parse_unknown_kind_lists_the_kinds() -> None:
    assert problems(ORDERS.replace("kind: orders", "kind: refunds")) == [
        "mine.yml, line 1: kind 'refunds' is not known; accepted: orders, "
        "contacts, store-purchases"
    ]


def test_parse_mapping_for_another_kind_names_the_shipped_ones_for_that_kind() -> None:
    [problem] = problems(ORDERS, kind="contacts")

    assert problem == (
        "mine.yml, line 1: this mapping is for orders, not contacts; shipped "
        "mappings for contacts: completejourney-demographics, crm-contacts"
    )


def test_parse_options_that_do_not_go_together_are_rejected_at_their_lines() -> None:
    text = (
        ORDERS.replace("format: csv", "format: parquet\n  delimiter: ';'")
        .replace("currency: EUR\n", "")
        .replace("kind: orders", "kind: store-purchases")
    )

    assert problems(text) == [
        "mine.yml, line 5: file.delimiter does not apply to parquet",
        "mine.yml, line 1: currency is required: a code such as USD, or "
        "columns.currency",
        "mine.yml, line 6: columns.store_id is required for stores",
    ]


def test_parse_unknown_encoding_is_rejected_at_its_line() -> None:
    text = ORDERS.replace("  format: csv\n", "  format: csv\n  encoding: klingon\n")

    assert problems(text) == [
        "mine.yml, line 5: file.encoding 'klingon' is not known; e.g. utf-8, "
        "latin-1, cp1252"
    ]


def test_parse_invalid_yaml_names_the_line() -> None:
    [problem] = problems(ORDERS + "date_format: %Y%m%d\n")

    assert problem.startswith("mine.yml, line 10: not valid YAML")


def test_parse_repeated_key_is_rejected() -> None:
    assert problems(ORDERS + "currency: USD\n") == [
        "mine.yml, line 10: key 'currency' is repeated"
    ]


def test_parse_contacts_mapping_without_traits_says_they_are_required() -> None:
    text = (
        "kind: contacts\nsource: crm\nfile: {format: csv}\ncolumns: {customer_id: id}\n"
    )

    assert problems(text) == ["mine.yml, line 1: traits is required"]


def test_parse_contacts_mapping_keeps_trait_names_as_written() -> None:
    text = (
        "kind: contacts\nsource: crm\nfile: {format: csv}\n"
        "columns: {customer_id: id}\ntraits:\n  on: opted_in\n  email: mail\n"
    )

    loaded = mapping.parse(text, name="mine.yml")

    assert isinstance(loaded, ContactMapping)
    assert loaded.traits == {"on": "opted_in", "email": "mail"}


def test_resolve_unknown_name_lists_the_shipped_mappings() -> None:
    with pytest.raises(UnknownMappingError, match="shipped: cdnow-orders, "):
        mapping.resolve("cdnow")


def test_load_mapping_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text(ORDERS)

    assert mapping.load(str(path), kind="orders").source == "webshop"


def test_yaml_aliases_are_refused_before_they_can_expand() -> None:
    laughs = (
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    )
    laughs += "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nkind: contacts\n"

    with pytest.raises(MappingError, match="anchors and aliases"):
        mapping.parse(laughs, name="laughs.yml")
