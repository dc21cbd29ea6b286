from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.settings import get_settings


@pytest.fixture
def use_segments(
    settings_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Path]]:
    """Make the platform read these segment definitions; returns the file."""
    path = tmp_path / "segments.yml"
    monkeypatch.setenv("CDP_SEGMENTS__DEFINITIONS_PATH", str(path))
    get_settings.cache_clear()

    def write(text: str) -> Path:
        path.write_text(text)
        return path

    yield write
    get_settings.cache_clear()
