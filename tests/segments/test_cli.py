"""`cdp segments` on a segment file with mistakes: the mistakes, not a traceback."""

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

BROKEN = "segments:\n  - name: buyers\n    when: {stage: decison}\n"


def test_a_recompute_refuses_a_file_with_mistakes_and_names_them(
    runner: CliRunner, use_segments: Callable[[str], Path]
) -> None:
    use_segments(BROKEN)

    result = runner.invoke(app, ["segments", "recompute"])

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "segments.yml, line 3:" in result.output
    assert "'decison'" in result.output


def test_check_names_a_file_it_cannot_read(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["segments", "check", str(tmp_path / "nowhere.yml")])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "cannot read" in result.output
    assert "nowhere.yml: No such file or directory" in result.output
