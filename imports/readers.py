"""Reading the rows of an import file: CSV, whitespace-separated text and parquet.

Each reader yields a ``Row`` (its line, or its row number in a parquet file, and the
values of the wanted columns) or a ``RowError`` for a row it cannot split, and says
how far it got so that a caller can show progress. A file that cannot be read at all,
or that lacks a wanted column, raises ``ImportFileError`` before the first row.
"""

import csv
import io
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from imports.errors import ImportFileError
from imports.models import FileOptions, RowError

PARQUET_BATCH_ROWS = 50_000
_UTF8 = ("utf-8", "utf8", "utf-8-sig")


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]


class Table:
    """The rows of an open file; ``total`` and ``done`` count progress units."""

    unit = "line"
    total = 0

    def rows(self) -> Iterator[Row | RowError]:
        raise NotImplementedError

    def done(self) -> int:
        raise NotImplementedError


@contextmanager
def open_table(
    path: Path, options: FileOptions, columns: Collection[str]
) -> Iterator[Table]:
    if options.format == "parquet":
        yield ParquetTable(path, columns)
        return
    with path.open("rb") as raw:
        # utf-8-sig also reads the byte-order mark that spreadsheet exports start with.
        encoding = (
            "utf-8-sig" if options.encoding.lower() in _UTF8 else options.encoding
        )
        try:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        except LookupError:
            raise ImportFileError(
                f"unknown encoding {options.encoding!r}; e.g. utf-8, latin-1, cp1252",
                loc=["mapping", "file", "encoding"],
            ) from None
        table_class = CsvTable if options.format == "csv" else WhitespaceTable
        try:
            yield table_class(raw, text, options, columns, path.stat().st_size)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"the file is not {options.encoding} near byte {raw.tell()} "
                f"({exc.reason}); set file.encoding in the mapping, e.g. latin-1",
                loc=["file"],
            ) from None


class _TextTable(Table):
    def __init__(
        self,
        raw: BinaryIO,
        text: io.TextIOWrapper,
        options: FileOptions,
        columns: Collection[str],
        size: int,
    ) -> None:
        self.raw, self.text, self.options, self.total = raw, text, options, size
        self.line = 0
        header = self._header() if options.header else None
        names = options.names or header or []
        self.positions = _positions(names, columns)
        self.width = len(names)

    def done(self) -> int:
        return self.raw.tell()

    def _header(self) -> list[str]:
        for line, fields in self._records():
            self.line = line
            return [name.strip() for name in fields]
        raise ImportFileError("the file is empty: no header line", loc=["file"])

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        raise NotImplementedError

    def rows(self) -> Iterator[Row | RowError]:
        for line, fields in self._records():
            if len(fields) != self.width:
                yield RowError(
                    line, f"expected {self.width} fields, found {len(fields)}"
                )
                continue
            yield Row(line, {name: fields[i] for name, i in self.positions.items()})


class CsvTable(_TextTable):
    def __init__(self, *args: Any) -> None:
        self._reader: Any = None
        super().__init__(*args)

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        if self._reader is None:
            delimiter = self.options.delimiter or ","
            self._reader = csv.reader(self.text, delimiter=delimiter)
        while True:
            # A record starts on the line after the previous one ended.
            start = self._reader.line_num + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(
                    f"line {start}: not readable as CSV: {exc}", loc=["file"]
                ) from None
            if fields:
                yield start, fields


class WhitespaceTable(_TextTable):
    def _records(self) -> Iterator[tuple[int, list[str]]]:
        for line in self.text:
            self.line += 1
            fields = line.split()
            if fields:
                yield self.line, fields


class ParquetTable(Table):
    unit = "row"

    def __init__(self, path: Path, columns: Collection[str]) -> None:
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFileError(
                f"the file is not readable as parquet: {exc}", loc=["file"]
            ) from None
        _positions(self.file.schema_arrow.names, columns)
        self.columns = list(dict.fromkeys(columns))
        self.total = self.file.metadata.num_rows
        self.count = 0

    def done(self) -> int:
        return self.count

    def rows(self) -> Iterator[Row | RowError]:
        batches = self.file.iter_batches(
            batch_size=PARQUET_BATCH_ROWS, columns=self.columns
        )
        for batch in batches:
            for values in batch.to_pylist():
                self.count += 1
                yield Row(self.count, values)


def _positions(names: list[str], columns: Collection[str]) -> dict[str, int]:
    """Where each wanted column is; every one must be in the file."""
    missing = [column for column in columns if column not in names]
    if missing:
        raise ImportFileError(
            f"the file has no column {', '.join(map(repr, missing))}; "
            f"its columns: {', '.join(names)}",
            loc=["file"],
        )
    return {column: names.index(column) for column in columns}
