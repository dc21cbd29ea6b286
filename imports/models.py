"""Import schemas: the column mapping read from YAML, and the report of an import."""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

EventKind = Literal["orders", "contacts", "store-purchases"]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
FileFormat = Literal["csv", "whitespace", "parquet"]

# Names of file columns, and of the source the messages are said to come from.
ColumnName = Annotated[str, Field(min_length=1)]
SourceName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class _Strict(BaseModel):
    # YAML already gives typed values: a quoted "true" is text, not a yes.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FileOptions(_Strict):
    """How to read the file."""

    format: FileFormat
    # csv only; one character, e.g. ";" or "\t".
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] | None = None
    # Text files: whether the first line names the columns; if not, `names` does.
    header: bool = True
    names: list[ColumnName] | None = None
    encoding: str = "utf-8"


class OrderColumns(_Strict):
    """File column of each order field. A row is one line item; rows that share an
    order id are one order. Without an order id every row is an order of its own."""

    customer_id: ColumnName
    timestamp: ColumnName
    order_id: ColumnName | None = None
    total: ColumnName | None = None
    revenue: ColumnName | None = None
    # Discounts are added up when several columns hold them.
    discount: ColumnName | list[ColumnName] | None = None
    currency: ColumnName | None = None
    store_id: ColumnName | None = None
    product_id: ColumnName | None = None
    sku: ColumnName | None = None
    quantity: ColumnName | None = None
    price: ColumnName | None = None  # unit price
    line_total: ColumnName | None = None  # price times quantity, as paid
    category: ColumnName | None = None


class ContactColumns(_Strict):
    customer_id: ColumnName
    timestamp: ColumnName | None = None


class _MappingBase(_Strict):
    source: SourceName
    file: FileOptions
    # strptime format of text dates, e.g. "%Y%m%d"; ISO 8601 when not given.
    date_format: str | None = None
    # Zone of times written without one.
    timezone: str = "UTC"


class OrderMapping(_MappingBase):
    kind: Literal["orders", "store-purchases"]
    columns: OrderColumns
    currency: CurrencyCode | None = None


class ContactMapping(_MappingBase):
    kind: Literal["contacts"]
    columns: ContactColumns
    # Trait name on the profile -> file column; `email` and `phone` are identities.
    traits: dict[str, ColumnName] = Field(min_length=1)


Mapping = OrderMapping | ContactMapping


@dataclass(frozen=True)
class RowError:
    """A row that was not imported, and why."""

    line: int
    reason: str
    unit: str = "line"  # parquet files have rows, not lines

    def __str__(self) -> str:
        return f"{self.unit} {self.line}: {self.reason}"


class ImportReport(BaseModel):
    kind: EventKind
    source: str
    file: str
    rows: int = 0  # data rows read
    queued: int = 0  # messages queued; an order of many lines is one message
    rejected: int = 0  # rows not imported
    # "line N: reason" for the first rejected rows, in file order.
    errors: list[str] = []
    seconds: float = 0.0
