"""The segment language: what marketers write, the mistakes they are told about,
and what a condition says of one profile."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segments.definitions import Facts, InvalidSegmentsError, parse

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SHOP_FILE = Path(__file__).resolve().parents[2] / "shop" / "segments.yml"


def segment(condition: str) -> str:
    body = "\n".join("      " + line for line in condition.strip().splitlines())
    return f"segments:\n  - name: s\n    when:\n{body}\n"


def holds(condition: str, facts: Facts) -> bool:
    [parsed] = parse(segment(condition), name="segments.yml").segments
    return parsed.test(facts)


def events(name: str, *ages_and_properties: tuple[float, dict]) -> dict:
    return {
        name: [(NOW - timedelta(days=age), props) for age, props in ages_and_properties]
    }


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidSegmentsError) as caught:
        parse(text, name="segments.yml")
    return caught.value.problems


def test_parse_shop_file_is_valid_and_names_what_it_reads() -> None:
    parsed = parse(SHOP_FILE.read_text(), name="segments.yml")

    assert "abandoned_cart" in parsed.by_name()
    assert {"Product Viewed", "Order Completed"} <= parsed.event_names
    assert parsed.window == timedelta(days=365)


def test_parse_mistakes_are_reported_with_their_line_and_what_is_accepted() -> None:
    text = """segments:
  - name: comparers
    when:
      all:
        - stage: shopping
        - evnt: Product Viewed
        - event: Product Viewed
          within: 7
        - computed: revenue
  - name: comparers
    when: {consent: email_marketing}
"""
    found = problems(text)

    assert found[0].startswith("segments.yml, line 5: segments.0.when.all.0.stage:")
    assert "'orientation', 'comparison', 'decision' or 'evaluation'" in found[0]
    assert found[1].startswith("segments.yml, line 6:")
    assert "a condition starts with one of: all, any, not, trait" in found[1]
    assert found[2] == (
        "segments.yml, line 8: unknown key 'within' in segments.0.when.all.2; "
        "accepted: event, where, within_days, count, sum"
    )
    assert found[3].startswith("segments.yml, line 9:")
    assert "give min, max or both" in found[3]
    assert len(found) == 4  # the repeated name is reported once the rest is right


def test_parse_a_name_defined_twice_is_refused_with_both_lines() -> None:
    text = """segments:
  - name: vip
    when: {retention: loyal}
  - name: vip
    when: {retention: promising}
"""
    assert problems(text) == [
        "segments.yml, line 4: segment 'vip' is defined twice (first on line 2)"
    ]


def test_event_condition_counts_only_matching_events_inside_the_window() -> None:
    condition = """
event: Product Viewed
where: {category: {contains: jackets}}
within_days: 7
count: {min: 3}
"""
    jacket = {"category": "Women/Tops/Jackets"}
    three = events("Product Viewed", (1, jacket), (2, jacket), (6, jacket))
    old_third = events("Product Viewed", (1, jacket), (2, jacket), (8, jacket))
    other = events(
        "Product Viewed", (1, jacket), (2, jacket), (3, {"category": "Bags"})
    )

    assert holds(condition, Facts(now=NOW, events=three))
    assert not holds(condition, Facts(now=NOW, events=old_third))
    assert not holds(condition, Facts(now=NOW, events=other))


def test_event_condition_notes_when_its_oldest_event_leaves_the_window() -> None:
    facts = Facts(now=NOW, events=events("Product Added", (1.5, {}), (0.5, {})))

    assert holds("event: Product Added\nwithin_days: 2", facts)
    assert facts.changes == [NOW + timedelta(days=0.5)]


def test_event_condition_where_matches_a_product_inside_an_order() -> None:
    order = {"total": 80, "products": [{"sku": "MH01", "category": "Men/Tops"}]}
    facts = Facts(now=NOW, events=events("Order Completed", (3, order)))

    assert holds("event: Order Completed\nwhere: {category: {contains: men}}", facts)
    assert not holds("event: Order Completed\nwhere: {sku: WJ06}", facts)


def test_event_condition_sums_a_property() -> None:
    condition = (
        "event: Order Completed\nwithin_days: 365\nsum: {property: total, min: 200}"
    )
    two = events("Order Completed", (10, {"total": 120}), (200, {"total": 90.5}))
    one_too_old = events("Order Completed", (10, {"total": 120}), (400, {"total": 90}))

    assert holds(condition, Facts(now=NOW, events=two))
    assert not holds(condition, Facts(now=NOW, events=one_too_old))


def test_not_and_any_combine_conditions() -> None:
    condition = """
all:
  - any:
      - trait: country
        one_of: [NL, BE]
      - trait: vip
        equals: true
  - not:
      consent: email_marketing
"""
    dutch = Facts(now=NOW, traits={"country": "nl"})
    vip_opted_in = Facts(
        now=NOW, traits={"vip": True}, consents=frozenset({"email_marketing"})
    )

    assert holds(condition, dutch)
    assert not holds(condition, vip_opted_in)
    assert not holds(condition, Facts(now=NOW, traits={"country": "DE"}))


def test_computed_days_since_notes_when_the_profile_crosses_the_bound() -> None:
    facts = Facts(now=NOW, computed={"days_since_last_order": 80.0})

    assert not holds("computed: days_since_last_order\nmin: 90", facts)
    assert facts.changes == [NOW + timedelta(days=10)]


def test_label_conditions_read_the_profile_state() -> None:
    facts = Facts(now=NOW, state={"stage": "decision", "retention": "loyal"})

    assert holds("stage: [comparison, decision]", facts)
    assert not holds("retention: red_alert", facts)
    assert not holds("customer_type: explorer", facts)


def test_all_notes_change_times_only_while_its_steady_parts_hold() -> None:
    condition = """
all:
  - trait: country
    equals: NL
  - event: Product Added
    within_days: 2
"""
    added = events("Product Added", (1.5, {}))
    german = Facts(now=NOW, traits={"country": "DE"}, events=added)
    dutch = Facts(now=NOW, traits={"country": "NL"}, events=added)

    assert not holds(condition, german)
    assert holds(condition, dutch)
    # Only an event can make the German profile Dutch: no recheck is due for it.
    assert german.changes == []
    assert dutch.changes == [NOW + timedelta(days=0.5)]


def test_parse_context_mistakes_name_the_line_and_the_accepted_keys() -> None:
    text = """segments:
  - name: evening
    when:
      context: {local_hour: {min: 18, max: 23}, wether_band: hot}
  - name: phones
    when:
      context: {device: phone}
  - name: nothing
    when: {context: {}}
"""
    found = problems(text)

    assert found[0] == (
        "segments.yml, line 4: unknown key 'wether_band' in segments.0.when.context; "
        "accepted: country, region, city, timezone, device, main_device, os, "
        "browser, local_hour, daypart, temperature, weather_band, raining, hot_day, "
        "cold_snap, traffic"
    )
    assert found[1].startswith("segments.yml, line 7: segments.1.when.context.device")
    assert "'mobile', 'tablet', 'desktop', 'bot' or 'other', got 'phone'" in found[1]
    assert found[2].startswith("segments.yml, line 9:")
    assert "give at least one of: country, region" in found[2]


def test_parse_names_the_context_facts_the_segments_test() -> None:
    parsed = parse(
        segment("any:\n  - context: {hot_day: true}\n  - context: {device: mobile}"),
        name="segments.yml",
    )

    assert parsed.context_facts == {"hot_day", "device"}
    assert parse(segment("stage: decision"), name="s.yml").context_facts == set()


def test_context_condition_every_fact_given_must_hold() -> None:
    facts = Facts(
        now=NOW,
        context={"country": "NL", "device": "Mobile", "hot_day": True,
                 "temperature": 28.5, "weather_band": "hot"},
    )  # fmt: skip

    assert holds("context: {country: nl, device: [mobile, tablet]}", facts)
    assert holds("context: {hot_day: true, temperature: {min: 25}}", facts)
    assert not holds("context: {country: NL, hot_day: false}", facts)
    assert not holds("context: {weather_band: [cold, freezing]}", facts)
    assert not holds("context: {raining: false}", facts)  # unknown is not false


def test_context_condition_local_hours_past_midnight_and_their_change_times() -> None:
    # 12:00 UTC is 14:00 in Amsterdam in June.
    amsterdam = {
        "timezone": "Europe/Amsterdam",
        "local_hour": 14,
        "daypart": "afternoon",
    }
    inside = Facts(now=NOW, context=amsterdam)
    outside = Facts(now=NOW, context={**amsterdam, "local_hour": 21})
    night = "context: {local_hour: {min: 22, max: 5}}"

    assert holds("context: {local_hour: {min: 12, max: 17}}", inside)
    assert not holds(night, inside)
    assert holds("context: {daypart: afternoon}", Facts(now=NOW, context=amsterdam))
    assert not holds(night, outside)
    # The afternoon ends at 18:00 local, 16:00 UTC; the night starts at 22:00 local.
    assert inside.changes == [NOW + timedelta(hours=4), NOW + timedelta(hours=8)]


def test_context_condition_weather_is_rechecked_only_for_located_profiles() -> None:
    later = NOW + timedelta(minutes=30)
    located = Facts(
        now=NOW, context={"country": "ES", "hot_day": True},
        context_changes={"weather": later},
    )  # fmt: skip
    nowhere = Facts(now=NOW, context={}, context_changes={"weather": later})

    assert holds("context: {hot_day: true}", located)
    assert not holds("context: {hot_day: true}", nowhere)
    assert located.changes == [later]
    assert nowhere.changes == []
