"""Turning the rows of an import file into Segment messages and queueing them like
live tracking, so the worker resolves identities the same way. No HTTP here.

An order becomes a ``track`` "Order Completed" with the e-commerce spec's properties,
a store purchase the same with ``channel: store``, and a contact an ``identify`` with
traits. Every message id is derived from the source, the kind and the row's natural
key (order id, or customer id and the contact's content), so importing a file again
queues the same ids and the worker's ``messageId`` dedup stores nothing new.
"""

import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import redis

from events import queue
from events.models import Message
from events.service import envelope, validate
from imports import readers
from imports.models import (
    ContactMapping,
    ImportReport,
    Mapping,
    OrderMapping,
    RowError,
)

logger = logging.getLogger(__name__)

# Fixed forever: changing it would make every earlier import look new.
MESSAGE_ID_NAMESPACE = uuid.UUID("11671605-6bb9-475d-975b-bc34300cbb2c")
ORDER_EVENT = "Order Completed"
MAX_ERRORS = 1000  # rejected rows listed in a report; all are counted
PUBLISH_BATCH = 1000
PROGRESS_EVERY = 10_000

# Called with the phase ("reading", "queueing"), units done and units in all.
Progress = Callable[[str, int, int], None]


class _RowValueError(ValueError):
    """A row value that cannot be used; the message is the reason shown."""


class _Line(NamedTuple):
    """One line item, kept small: a large file holds many of them until queued."""

    product_id: str | None
    sku: str | None
    quantity: int | None
    price: float | None
    category: str | None
    amount: float | None  # what the line cost, when the file tells
    discount: float


@dataclass(slots=True)
class _Order:
    order_id: str
    customer_id: str
    timestamp: datetime
    fields: dict[str, Any]  # order-level values, from the order's first row
    lines: list[int] = field(default_factory=list)
    items: list[_Line] = field(default_factory=list)


def mapped_columns(mapping: Mapping) -> list[str]:
    """Every file column the mapping reads."""
    columns: list[str] = []
    for value in mapping.columns.model_dump().values():
        columns.extend(value if isinstance(value, list) else [value] if value else [])
    if isinstance(mapping, ContactMapping):
        columns.extend(mapping.traits.values())
    return list(dict.fromkeys(columns))


def import_file(
    client: redis.Redis,
    stream: str,
    path: Path,
    mapping: Mapping,
    *,
    file_name: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Read ``path`` with ``mapping`` and queue one message per order or contact."""
    started = time.perf_counter()
    run = _Import(mapping, file_name or path.name, progress)

    with readers.open_table(path, mapping.file, mapped_columns(mapping)) as table:
        run.unit = table.unit
        rows = run.read(table)
        messages = (
            run.contact_messages(mapping, rows)
            if isinstance(mapping, ContactMapping)
            else run.order_messages(mapping, rows)
        )
        queued = run.queue(client, stream, messages)

    report = run.report(queued, time.perf_counter() - started)
    logger.info(
        "import finished",
        extra={
            "kind": report.kind,
            "source": report.source,
            "rows": report.rows,
            "queued": report.queued,
            "rejected": report.rejected,
            "seconds": report.seconds,
        },
    )
    return report


class _Import:
    """The state of one import: what was read, what was rejected and why."""

    def __init__(
        self, mapping: Mapping, file_name: str, progress: Progress | None
    ) -> None:
        self.mapping = mapping
        self.file_name = file_name
        self.progress = progress or (lambda _phase, _done, _total: None)
        self.zone: tzinfo = (
            UTC if mapping.timezone == "UTC" else ZoneInfo(mapping.timezone)
        )
        self.unit = "line"
        self.rows = 0
        self.rejected = 0
        self.errors: list[RowError] = []

    def read(self, table: readers.Table) -> Iterator[readers.Row]:
        """The good rows; a row the reader could not split is rejected here."""
        for row in table.rows():
            self.rows += 1
            if self.rows % PROGRESS_EVERY == 0:
                self.progress("reading", table.done(), table.total)
            if isinstance(row, RowError):
                self.reject(row.line, row.reason)
            else:
                yield row
        self.progress("reading", table.total, table.total)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(line, reason, self.unit))

    def report(self, queued: int, seconds: float) -> ImportReport:
        return ImportReport(
            kind=self.mapping.kind,
            source=self.mapping.source,
            file=self.file_name,
            rows=self.rows,
            queued=queued,
            rejected=self.rejected,
            errors=[str(e) for e in sorted(self.errors, key=lambda e: e.line)],
            seconds=round(seconds, 3),
        )

    def message_id(self, key: str) -> str:
        name = f"{self.mapping.source}\n{self.mapping.kind}\n{key}"
        return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, name))

    def context(self, line: int) -> dict[str, Any]:
        return {"import": {"file": self.file_name, self.unit: line}}

    # Queueing

    def queue(
        self,
        client: redis.Redis,
        stream: str,
        messages: Iterable[tuple[list[int], dict[str, Any]]],
    ) -> int:
        """Validate each message as the tracking API does (size, fields, e-commerce
        property types) and queue it in batches; one that does not validate rejects
        the rows it came from."""
        received_at = datetime.now(UTC)
        batch: list[dict[str, Any]] = []
        queued = 0
        for lines, raw in messages:
            message = validate(raw)
            if not isinstance(message, Message):
                for line in lines:
                    self.reject(line, _reason(message))
                continue
            batch.append(
                envelope(message, source=self.mapping.source, received_at=received_at)
            )
            if len(batch) == PUBLISH_BATCH:
                queued += queue.publish(client, stream, batch)
                batch = []
        return queued + queue.publish(client, stream, batch)

    # Contacts

    def contact_messages(
        self, mapping: ContactMapping, rows: Iterable[readers.Row]
    ) -> Iterator[tuple[list[int], dict[str, Any]]]:
        for row in rows:
            try:
                yield [row.line], self.contact_message(mapping, row)
            except _RowValueError as bad:
                self.reject(row.line, str(bad))

    def contact_message(
        self, mapping: ContactMapping, row: readers.Row
    ) -> dict[str, Any]:
        customer_id = _required(row.values, mapping.columns.customer_id)
        traits = {}
        for trait, column in mapping.traits.items():
            value = _trait(row.values[column])
            if value is not None:
                traits[trait] = value
        if "email" in traits:
            traits["email"] = _email(str(traits["email"]), mapping.traits["email"])
        if "phone" in traits:
            traits["phone"] = str(traits["phone"])
        message = {
            "type": "identify",
            "userId": customer_id,
            "traits": traits,
            "messageId": self.message_id(f"{customer_id}\n{_digest(traits)}"),
            "context": self.context(row.line),
        }
        if mapping.columns.timestamp is not None:
            message["timestamp"] = self.time(row.values, mapping.columns.timestamp)
        return message

    # Orders and store purchases

    def order_messages(
        self, mapping: OrderMapping, rows: Iterable[readers.Row]
    ) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """All rows are read before the first order is queued: the lines of one
        order may be anywhere in the file, and a message must hold all of them."""
        orders, failed = self.collect_orders(mapping, rows)
        for done, order in enumerate(orders.values(), start=1):
            if done % PROGRESS_EVERY == 0:
                self.progress("queueing", done, len(orders))
            bad_line = failed.get(order.order_id)
            if bad_line is None:
                yield order.lines, self.order_message(mapping, order)
                continue
            for line in order.lines:
                self.reject(
                    line,
                    f"order {order.order_id!r} not imported: "
                    f"{self.unit} {bad_line} of it was rejected",
                )
        self.progress("queueing", len(orders), len(orders))

    def collect_orders(
        self, mapping: OrderMapping, rows: Iterable[readers.Row]
    ) -> tuple[dict[str, _Order], dict[str, int]]:
        """Orders by id with their lines, and the first bad line of each order that
        has one, so that no order is queued without one of its lines."""
        orders: dict[str, _Order] = {}
        failed: dict[str, int] = {}
        seen: dict[tuple[str, str], int] = {}
        id_column = mapping.columns.order_id
        for row in rows:
            order_id = _text(row.values[id_column]) if id_column else None
            if id_column and order_id is None:
                self.reject(row.line, f"{id_column} is empty")
                continue
            try:
                customer_id = _required(row.values, mapping.columns.customer_id)
                timestamp = self.time(row.values, mapping.columns.timestamp)
                order_id = order_id or _derived_id(customer_id, timestamp, seen)
                item = _line(mapping, row.values)
                order = self.order_for(
                    mapping, row, (order_id, customer_id, timestamp), orders
                )
            except _RowValueError as bad:
                self.reject(row.line, str(bad))
                if order_id is not None:
                    failed.setdefault(order_id, row.line)
                continue
            order.lines.append(row.line)
            order.items.append(item)
        return orders, failed

    def order_for(
        self,
        mapping: OrderMapping,
        row: readers.Row,
        key: tuple[str, str, datetime],
        orders: dict[str, _Order],
    ) -> _Order:
        """The order a row belongs to, begun with this row if it is the first."""
        order_id, customer_id, timestamp = key
        order = orders.get(order_id)
        if order is None:
            fields = _order_fields(mapping, row.values)
            order = orders[order_id] = _Order(order_id, customer_id, timestamp, fields)
        elif order.customer_id != customer_id:
            raise _RowValueError(
                f"order {order_id!r} is for customer {order.customer_id!r} "
                f"({self.unit} {order.lines[0]}), not {customer_id!r}"
            )
        return order

    def order_message(self, mapping: OrderMapping, order: _Order) -> dict[str, Any]:
        fields = order.fields
        total = fields.get("total")
        if total is None:
            total = sum(item.amount or 0.0 for item in order.items)
        revenue = fields.get("revenue")
        properties: dict[str, Any] = {
            "order_id": order.order_id,
            "total": round(total, 2),
            "revenue": round(total if revenue is None else revenue, 2),
            "currency": fields.get("currency") or mapping.currency,
        }
        if mapping.columns.discount is not None:
            properties["discount"] = round(sum(i.discount for i in order.items), 2)
        properties["products"] = [p for i in order.items if (p := _product(i))]
        if mapping.kind == "store-purchases":
            properties.update(channel="store", store_id=fields["store_id"])
        return {
            "type": "track",
            "event": ORDER_EVENT,
            "userId": order.customer_id,
            "timestamp": order.timestamp,
            "properties": properties,
            "messageId": self.message_id(order.order_id),
            "context": self.context(order.lines[0]),
        }

    def time(self, values: dict[str, Any], column: str) -> datetime:
        """A date or time from the file, in the mapping's zone when it has none."""
        value = values[column]
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day)
        else:
            parsed = _parse_time(_required(values, column), column, self.mapping)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.zone)


def _order_fields(mapping: OrderMapping, values: dict[str, Any]) -> dict[str, Any]:
    columns = mapping.columns
    fields: dict[str, Any] = {}
    if columns.total:
        fields["total"] = _number(values, columns.total, required=True)
    if columns.revenue:
        fields["revenue"] = _number(values, columns.revenue)
    if columns.currency:
        fields["currency"] = _currency(values, columns.currency)
    if columns.store_id:
        fields["store_id"] = _required(values, columns.store_id)
    return fields


def _line(mapping: OrderMapping, values: dict[str, Any]) -> _Line:
    columns = mapping.columns
    quantity = _quantity(values, columns.quantity) if columns.quantity else None
    price = _number(values, columns.price) if columns.price else None
    amount = _number(values, columns.line_total) if columns.line_total else None
    if amount is None and price is not None:
        amount = price * (1 if quantity is None else quantity)
    if price is None and amount is not None and quantity:
        price = round(amount / quantity, 4)
    discounts = columns.discount or []
    discount_columns = [discounts] if isinstance(discounts, str) else discounts
    return _Line(
        product_id=_text(values[columns.product_id]) if columns.product_id else None,
        sku=_text(values[columns.sku]) if columns.sku else None,
        quantity=quantity,
        price=price,
        category=_text(values[columns.category]) if columns.category else None,
        amount=amount,
        discount=sum(_number(values, c) or 0.0 for c in discount_columns),
    )


def _product(item: _Line) -> dict[str, Any]:
    """The spec's product entry, with only what the file told."""
    product = {
        "product_id": item.product_id,
        "sku": item.sku,
        "quantity": item.quantity,
        "price": item.price,
        "category": item.category,
    }
    return {key: value for key, value in product.items() if value is not None}


def _derived_id(
    customer_id: str, timestamp: datetime, seen: dict[tuple[str, str], int]
) -> str:
    """An order id for files without one: the customer, the day (and time, when
    the file has it) and the row's place among that customer's rows of that time.
    Stable as long as the file keeps its rows in the same order."""
    has_time = (timestamp.hour, timestamp.minute, timestamp.second) != (0, 0, 0)
    stamp = timestamp.strftime("%Y%m%dT%H%M%S" if has_time else "%Y%m%d")
    seen[customer_id, stamp] = seen.get((customer_id, stamp), 0) + 1
    return f"{customer_id}-{stamp}-{seen[customer_id, stamp]}"


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an id read as a number: 1234.0 is "1234"
    text = str(value).strip()
    return text or None


def _required(values: dict[str, Any], column: str) -> str:
    text = _text(values[column])
    if text is None:
        raise _RowValueError(f"{column} is empty")
    return text


def _number(
    values: dict[str, Any], column: str, *, required: bool = False
) -> float | None:
    """A non-negative amount; None for an empty cell unless it is required."""
    value = values[column]
    text = _text(value)
    if text is None:
        if required:
            raise _RowValueError(f"{column} is empty")
        return None
    try:
        number = float(value) if isinstance(value, int | float) else float(text)
    except ValueError:
        raise _RowValueError(f"{column} {text!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise _RowValueError(f"{column} {text!r} is not a number")
    if number < 0:
        raise _RowValueError(f"{column} {text!r} is negative")
    return number


def _quantity(values: dict[str, Any], column: str) -> int | None:
    number = _number(values, column)
    if number is None:
        return None
    if not number.is_integer():
        raise _RowValueError(
            f"{column} {_text(values[column])!r} is not a whole number"
        )
    return int(number)


def _currency(values: dict[str, Any], column: str) -> str:
    code = _required(values, column).upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise _RowValueError(f"{column} {code!r} is not a currency code such as USD")
    return code


def _parse_time(text: str, column: str, mapping: Mapping) -> datetime:
    fmt = mapping.date_format
    try:
        return datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
    except ValueError:
        expected = f"the date format {fmt}" if fmt else "ISO 8601 (2024-05-31)"
        raise _RowValueError(f"{column} {text!r} is not a date in {expected}") from None


def _trait(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) or value is None:
        return _text(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _email(value: str, column: str) -> str:
    local, at, domain = value.partition("@")
    if not (local and at and "." in domain.strip(".")) or " " in value:
        raise _RowValueError(f"{column} {value!r} is not an e-mail address")
    return value


def _reason(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in errors
    )


def _digest(traits: dict[str, Any]) -> str:
    payload = json.dumps(traits, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
