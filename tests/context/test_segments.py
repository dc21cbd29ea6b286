"""Context facts in segments: snapshots taken in bulk only when a segment tests
one, and a recheck when the weather is next asked for."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.settings import get_settings
from segments import membership
from segments.models import SegmentMember, SegmentRecheck
from tests.context.conftest import (
    IP_MADRID,
    IP_UTRECHT,
    UA_IPHONE,
    UA_WINDOWS_EDGE,
    FakeOpenMeteo,
)
from tests.context.test_service import T0, apply, profile_id, seen

HOT_AFTERNOON = datetime(2025, 7, 18, 14, tzinfo=UTC)  # 16:00 in Madrid
CONTEXT_SEGMENTS = """segments:
  - name: hot_in_spain
    when:
      context: {country: ES, hot_day: true}
  - name: desktop_afternoons
    when:
      context: {device: desktop, daypart: afternoon}
"""


@pytest.fixture
def use_segments(
    context_env: Callable[..., None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], None]:
    """Make the platform read these segment definitions."""

    def write(text: str) -> None:
        path = tmp_path / "segments.yml"
        path.write_text(text)
        monkeypatch.setenv("CDP_SEGMENTS__DEFINITIONS_PATH", str(path))
        get_settings.cache_clear()

    return write


def members(engine: Engine) -> set[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(SegmentMember)).all()
    return {(m.segment, m.profile_id) for m in rows}


def test_evaluate_places_profiles_by_their_weather_place_and_device(
    engine: Engine, use_segments: Callable[[str], None]
) -> None:
    use_segments(CONTEXT_SEGMENTS)
    apply(
        engine,
        seen("m-1", T0, IP_MADRID, UA_IPHONE, visitor="madrid"),
        seen("m-2", T0, IP_UTRECHT, UA_WINDOWS_EDGE, visitor="utrecht"),
    )
    madrid, utrecht = profile_id(engine, "madrid"), profile_id(engine, "utrecht")

    with Session(engine) as session:
        membership.evaluate(
            session, [madrid, utrecht], reason="test", now=HOT_AFTERNOON
        )
        session.commit()
        rechecks = dict(
            session.exec(select(SegmentRecheck.profile_id, SegmentRecheck.due_at)).all()
        )

    assert members(engine) == {
        ("hot_in_spain", madrid),
        ("desktop_afternoons", utrecht),
    }
    weather_again = HOT_AFTERNOON + timedelta(
        seconds=get_settings().context.weather_seconds
    )
    assert rechecks[madrid].replace(tzinfo=UTC) == weather_again
    # 16:00 in Utrecht: the afternoon ends at 18:00 local, 16:00 UTC.
    assert rechecks[utrecht].replace(tzinfo=UTC) == HOT_AFTERNOON + timedelta(hours=2)


def test_evaluate_takes_no_snapshot_when_no_segment_tests_context(
    engine: Engine, use_segments: Callable[[str], None], open_meteo: FakeOpenMeteo
) -> None:
    use_segments(
        "segments:\n  - name: buyers\n    when: {computed: order_count, min: 1}\n"
    )
    apply(engine, seen("m-1", T0, IP_MADRID, UA_IPHONE))

    with Session(engine) as session:
        membership.evaluate(
            session, [profile_id(engine)], reason="test", now=HOT_AFTERNOON
        )
        session.commit()

    assert open_meteo.queries == []
