from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.imports.conftest import CDNOW, DATA


def test_cdp_import_orders_prints_the_report(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["import", "orders", str(CDNOW), "--mapping", "cdnow-orders"]
    )

    assert result.exit_code == 0, result.output
    assert "cdnow-orders.txt: 299 rows read, 299 messages queued" in result.output
    assert "0 rows rejected" in result.output


def test_cdp_import_contacts_lists_rejected_rows_by_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = tmp_path / "contacts.csv"
    lines = (DATA / "crm-contacts.csv").read_text().splitlines()
    source.write_text("\n".join([*lines, "c-4,not-an-address,,,,,"]) + "\n")

    result = runner.invoke(
        app, ["import", "contacts", str(source), "-m", "crm-contacts"]
    )

    assert result.exit_code == 0, result.output
    assert "3 messages queued" in result.output
    assert "rejected line 5: email 'not-an-address' is not an e-mail address" in (
        result.output
    )


def test_cdp_import_with_a_mapping_for_another_kind_is_a_usage_error(
    runner: CliRunner,
) -> None:
    result = runner.invoke(
        app, ["import", "store-purchases", str(CDNOW), "-m", "cdnow-orders"]
    )

    assert result.exit_code == 2
    assert "this mapping is for orders, not store-purchases" in result.output
