"""The NLU pipeline's own components. Prices and catalog words are plain Python and
are tested here; their Rasa wrappers run in Rasa's environment."""

import json
import subprocess
import textwrap
from typing import Any

import pytest

from assistant.nlu.catalog_terms import TermMatcher, load_vocabulary, plural, singular
from assistant.nlu.prices import find_prices
from cli.assistant import rasa_env, rasa_executable


def prices(text: str) -> set[tuple[str, float | str]]:
    return {(m.entity, m.value) for m in find_prices(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hoodies under 50", {("max_price", 50.0)}),
        ("below $80 please", {("max_price", 80.0)}),
        ("less than 40 euros", {("max_price", 40.0)}),
        ("between 20 and 40", {("min_price", 20.0), ("max_price", 40.0)}),
        ("from 30 to 60", {("min_price", 30.0), ("max_price", 60.0)}),
        ("around 50", {("min_price", 40.0), ("max_price", 60.0)}),
        ("max 70", {("max_price", 70.0)}),
        ("over 100", {("min_price", 100.0)}),
        ("no more than 60 dollars", {("max_price", 60.0)}),
        ("no less than 30", {("min_price", 30.0)}),
        ("shorts $20-$40", {("min_price", 20.0), ("max_price", 40.0)}),
        ("a jacket for 50 or less", {("max_price", 50.0)}),
        ("under fifty bucks", {("max_price", 50.0)}),
        ("my budget is 49,99€", {("max_price", 49.99)}),
        ("at least 1,200", {("min_price", 1200.0)}),
    ],
)
def test_find_prices_reads_a_price_phrase_as_numbers(
    text: str, expected: set[tuple[str, float]]
) -> None:
    assert prices(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "delivery takes 3 to 5 days",
        "can I return it within 30 days?",
        "do you have size 30 to 32?",
        "where is order 100000123",
        "I weigh about 170 pounds",
        "I'm 180 cm and about 75 kg",
    ],
)
def test_find_prices_ignores_numbers_that_are_no_price(text: str) -> None:
    assert prices(text) == set()


def test_find_prices_covers_the_whole_token_with_its_currency() -> None:
    [match] = find_prices("tees under $25 please")

    assert (match.text, match.start, match.end) == ("$25", 11, 14)


def test_find_prices_reads_a_direction_only_without_a_number() -> None:
    assert prices("something cheaper") == {("price_direction", "cheaper")}
    assert prices("show me more expensive ones") == {("price_direction", "pricier")}
    assert prices("cheaper than 40") == {("max_price", 40.0)}


@pytest.fixture(scope="module")
def matcher() -> TermMatcher:
    return TermMatcher(load_vocabulary())


def terms(matcher: TermMatcher, text: str) -> list[tuple[str, str, str]]:
    return [(m.entity, m.value, m.text) for m in matcher.find(text)]


def test_matcher_finds_multi_word_terms_in_any_case_and_plural(
    matcher: TermMatcher,
) -> None:
    assert terms(matcher, "Womens RAIN JACKETS") == [
        ("gender", "women", "Womens"),
        ("category", "jacket", "RAIN JACKETS"),
    ]


def test_matcher_gives_the_catalog_value_of_a_synonym(matcher: TermMatcher) -> None:
    assert terms(matcher, "grey t-shirts in organic cotton") == [
        ("color", "gray", "grey"),
        ("category", "tee", "t-shirts"),
        ("material", "organic cotton", "organic cotton"),
    ]


def test_matcher_prefers_a_product_name_to_the_category_inside_it(
    matcher: TermMatcher,
) -> None:
    assert terms(matcher, "is the juno jacket waterproof?") == [
        ("product", "Juno Jacket", "juno jacket")
    ]
    assert terms(matcher, "chaz hoodie") == [
        ("product", "Chaz Kangeroo Hoodie", "chaz hoodie")
    ]


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("only size M or L", ["M", "L"]),
        ("do you have it in medium?", ["M"]),
        ("an XL please", ["XL"]),
        ("yoga pants 32 waist", ["32"]),
        ("a small bag", []),
        ("can I return it in 30 days", []),
        ("I'm looking for a tee", []),
    ],
)
def test_matcher_takes_ambiguous_sizes_only_in_context(
    matcher: TermMatcher, text: str, sizes: list[str]
) -> None:
    assert [m.value for m in matcher.find(text) if m.entity == "size"] == sizes


def test_matcher_reads_top_as_a_category_only_in_the_plural(
    matcher: TermMatcher,
) -> None:
    assert terms(matcher, "top rated tops") == [("category", "top", "tops")]


@pytest.mark.parametrize(
    ("word", "one", "many"),
    [
        ("Hoodies", "Hoodie", None),
        ("Watches", "Watch", None),
        ("Pants", "Pants", None),
        ("hoody", None, "hoodies"),
        ("watch", None, "watches"),
        ("bra", None, "bras"),
    ],
)
def test_singular_and_plural_of_catalog_nouns(
    word: str, one: str | None, many: str | None
) -> None:
    if one is not None:
        assert singular(word) == one
    if many is not None:
        assert plural(word) == many


RASA_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from assistant.nlu.components import (
        CatalogEntityExtractor, OptOutKeywordClassifier, PriceEntityExtractor)

    storage = LocalModelStorage(Path(tempfile.mkdtemp()))
    context = ExecutionContext(GraphSchema({}), "test")
    resource = Resource("catalog")
    CatalogEntityExtractor.create({}, storage, resource, context).train(TrainingData())
    catalog = CatalogEntityExtractor.load({}, storage, resource, context)
    prices = PriceEntityExtractor.create({}, storage, Resource("prices"), context)
    opt_out = OptOutKeywordClassifier.create({}, storage, Resource("opt"), context)

    guessed = {"entity": "color", "value": "grey", "start": 0, "end": 4,
               "extractor": "CRFEntityExtractor"}
    message = Message({"text": "grey hoodies under $50", "entities": [guessed]})
    stop = Message({"text": "STOP!", "intent": {"name": "nlu_fallback"}})
    catalog.process([message])
    prices.process([message])
    opt_out.process([stop])
    addons = [CatalogEntityExtractor.fingerprint_addon({"vocabulary": p})
              for p in sys.argv[1:]]
    print(json.dumps({"entities": message.get("entities"),
                      "intent": stop.get("intent"), "addons": addons}))
    """
)


@pytest.fixture(scope="module")
def rasa_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not rasa_executable().exists():
        pytest.skip("Rasa's environment is not set up (make setup)")
    folder = tmp_path_factory.mktemp("vocabularies")
    first, second = folder / "a.json", folder / "b.json"
    first.write_text(json.dumps({"entities": {"color": {"red": ["red"]}}}))
    second.write_text(json.dumps({"entities": {"color": {"blue": ["blue"]}}}))
    python = rasa_executable().parent / "python"
    result = subprocess.run(
        [str(python), "-c", RASA_SCRIPT, str(first), str(second)],
        env=rasa_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_components_replace_a_guess_with_catalog_values_and_add_prices(
    rasa_run: dict[str, Any],
) -> None:
    found = [(e["entity"], e["value"], e["extractor"]) for e in rasa_run["entities"]]

    assert found == [
        ("color", "gray", "CatalogEntityExtractor"),
        ("category", "hoodie", "CatalogEntityExtractor"),
        ("max_price", 50.0, "PriceEntityExtractor"),
    ]


def test_stop_is_an_opt_out_even_after_a_fallback(
    rasa_run: dict[str, Any],
) -> None:
    assert rasa_run["intent"] == {"name": "unsubscribe", "confidence": 1.0}


def test_a_changed_vocabulary_changes_the_training_fingerprint(
    rasa_run: dict[str, Any],
) -> None:
    first, second = rasa_run["addons"]

    assert first != second


FOLLOW_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, tempfile
    from pathlib import Path
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from assistant.nlu.components import CatalogEntityExtractor

    live = Path(sys.argv[1])
    storage = LocalModelStorage(Path(tempfile.mkdtemp()))
    context = ExecutionContext(GraphSchema({}), "test")
    resource = Resource("catalog")
    config = {"live_check_seconds": 0}
    CatalogEntityExtractor.create(config, storage, resource, context).train(
        TrainingData())
    os.environ["CDP_RASA__VOCABULARY_PATH"] = str(live)
    extractor = CatalogEntityExtractor.load(config, storage, resource, context)

    def understood(text):
        message = Message({"text": text})
        extractor.process([message])
        return [[e["entity"], e["value"]] for e in message.get("entities", [])]

    seen = {"before": understood("red kayaks")}
    live.write_text(json.dumps({"entities": {
        "category": {"kayak": ["kayak"]}, "color": {"red": ["red"]}}}))
    seen["published"] = understood("red kayaks")
    live.write_text("{not json")
    seen["broken"] = understood("red kayaks")
    print(json.dumps(seen))
    """
)


def test_a_running_model_follows_the_vocabulary_the_platform_publishes(
    tmp_path: Any,
) -> None:
    if not rasa_executable().exists():
        pytest.skip("Rasa's environment is not set up (make setup)")
    python = rasa_executable().parent / "python"
    result = subprocess.run(
        [str(python), "-c", FOLLOW_SCRIPT, str(tmp_path / "vocabulary.json")],
        env=rasa_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    # The demo catalog sells no kayaks: the trained words know red, not kayaks.
    assert seen["before"] == [["color", "red"]]
    assert seen["published"] == [["color", "red"], ["category", "kayak"]]
    assert seen["broken"] == seen["published"]  # a broken file leaves the words
    assert "not read, the terms in use stay" in result.stderr
