from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imports.errors import ImportFileError
from imports.models import FileOptions, RowError
from imports.readers import Row, open_table
from tests.imports.conftest import CDNOW

WHITESPACE = FileOptions(format="whitespace")


def read(path: Path, options: FileOptions, columns: list[str]) -> list[Row | RowError]:
    with open_table(path, options, columns) as table:
        return list(table.rows())


def test_read_whitespace_cdnow_slice_numbers_rows_by_their_line() -> None:
    rows = read(CDNOW, WHITESPACE, ["customer_id", "dollar_value"])

    assert len(rows) == 299
    assert rows[0] == Row(2, {"customer_id": "00001", "dollar_value": "11.77"})
    assert rows[-1] == Row(300, {"customer_id": "00076", "dollar_value": "9.99"})


def test_read_whitespace_short_line_is_a_row_error_and_blank_lines_are_skipped(
    tmp_path: Path,
) -> None:
    source = tmp_path / "orders.txt"
    source.write_text("id date\n\n1 19970101\n2\n")

    rows = read(source, WHITESPACE, ["id"])

    assert rows == [
        Row(3, {"id": "1"}),
        RowError(4, "expected 2 fields, found 1"),
    ]


def test_read_csv_with_delimiter_numbers_a_record_by_the_line_it_starts_on(
    tmp_path: Path,
) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text('\ufeffid;note\n1;"two\nlines"\n2;plain\n', encoding="utf-8")

    rows = read(source, FileOptions(format="csv", delimiter=";"), ["id", "note"])

    assert rows == [
        Row(2, {"id": "1", "note": "two\nlines"}),
        Row(4, {"id": "2", "note": "plain"}),
    ]


def test_read_csv_without_header_uses_the_mapping_names(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("7,12.50\n")
    options = FileOptions(format="csv", header=False, names=["id", "total"])

    assert read(source, options, ["total"]) == [Row(1, {"total": "12.50"})]


def test_read_latin1_file_as_utf8_says_to_set_the_encoding(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    source.write_bytes("id,name\n1,Chlo\u00e9\n".encode("latin-1"))

    with pytest.raises(ImportFileError, match=r"set file\.encoding in the mapping"):
        read(source, FileOptions(format="csv"), ["name"])

    rows = read(source, FileOptions(format="csv", encoding="latin-1"), ["name"])
    assert rows == [Row(2, {"name": "Chlo\u00e9"})]


def test_read_parquet_numbers_rows_from_one_and_reads_only_wanted_columns(
    tmp_path: Path,
) -> None:
    source = tmp_path / "lines.parquet"
    pq.write_table(pa.table({"basket": [10, 11], "value": [1.5, 2.0]}), source)

    rows = read(source, FileOptions(format="parquet"), ["value"])

    assert rows == [Row(1, {"value": 1.5}), Row(2, {"value": 2.0})]


def test_open_table_missing_column_lists_the_files_columns() -> None:
    with pytest.raises(ImportFileError) as raised:
        read(CDNOW, WHITESPACE, ["customer_id", "email"])

    assert raised.value.msg == (
        "the file has no column 'email'; its columns: customer_id, date, "
        "number_of_cds, dollar_value"
    )


def test_open_table_text_file_as_parquet_is_refused() -> None:
    with pytest.raises(ImportFileError, match="not readable as parquet"):
        read(CDNOW, FileOptions(format="parquet"), ["customer_id"])
