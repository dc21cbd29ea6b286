"""The shop's context file: thresholds and weather boosts, checked line by line."""

from pathlib import Path

import pytest

from context.rules import InvalidContextRulesError, get_rules, parse

SHOP_FILE = Path(__file__).resolve().parents[2] / "shop" / "context.yml"


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidContextRulesError) as caught:
        parse(text, name="context.yml")
    return caught.value.problems


def test_parse_the_shops_file_is_valid_and_boosts_summer_clothes_on_hot_days() -> None:
    rules = parse(SHOP_FILE.read_text(), name="context.yml")

    [(fact, boost)] = rules.boosts.active({"hot_day": True, "weather_band": "mild"})
    assert fact == "hot_day"
    assert "Women/Bottoms/Shorts" in boost.categories


def test_parse_mistakes_are_reported_with_their_line_and_what_is_accepted() -> None:
    text = """weather:
  bands: {freezing: 0, cold: 12, mild: 11, warm: 25}
boosts:
  hott_day:
    categories: [Women/Tops/Tees]
    boost: 0.2
  raining:
    categories: []
    boost: 2
"""
    found = sorted(problems(text), key=lambda p: int(p.split()[2].rstrip(":")))

    assert found[0].startswith("context.yml, line 2: weather.bands: Value error, band")
    assert "freezing < cold < mild < warm, got 0.0, 12.0, 11.0, 25.0" in found[0]
    assert found[1] == (
        "context.yml, line 4: unknown key 'hott_day' in boosts; accepted: hot_day, "
        "raining, cold_snap, freezing, cold, mild, warm, hot"
    )
    assert found[2].startswith("context.yml, line 8: boosts.raining.categories:")
    assert found[3].startswith("context.yml, line 9: boosts.raining.boost:")
    assert "less than or equal to 1" in found[3]


def test_get_rules_a_missing_file_names_the_path_and_the_setting(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidContextRulesError, match="CDP_CONTEXT__RULES_PATH"):
        get_rules(tmp_path / "absent.yml")


def test_get_rules_reads_an_edited_file_again(tmp_path: Path) -> None:
    path = tmp_path / "context.yml"
    path.write_text("weather: {hot_day: 30}\n")
    first = get_rules(path)
    path.write_text("weather: {hot_day: 25}\n# edited\n")

    assert (first.weather.hot_day, get_rules(path).weather.hot_day) == (30, 25)
