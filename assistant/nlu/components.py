"""Rasa graph components: the catalog's words and price limits as entities.

Both run after DIET in ``config.yml``. What a dictionary or a price pattern finds is
surer than what DIET guesses for the same words, so their entities replace DIET's
where they overlap; DIET still finds what the dictionary does not know (a misspelt
colour, a product name typed loosely). Imported only in Rasa's environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.nlu.catalog_terms import (
    VOCABULARY_PATH,
    Match,
    TermMatcher,
    load_vocabulary,
)
from assistant.nlu.prices import PriceMatch, find_prices

logger = logging.getLogger(__name__)

CATALOG_ENTITIES = ("category", "color", "size", "material", "gender", "product")
_FILE = "vocabulary.json"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True
)
class CatalogEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Tags the shop's categories, colours, sizes, materials, genders and product
    names by dictionary match, with the catalog's own value for each.

    Training copies the vocabulary into the model, so a model answers with the
    vocabulary it was trained with wherever it runs."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # vocabulary: the exported file; None is assistant/nlu/vocabulary.json.
        return {"vocabulary": None, "entities": list(CATALOG_ENTITIES)}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        unknown = set(config.get("entities") or []) - set(CATALOG_ENTITIES)
        if unknown:
            raise ValueError(
                f"CatalogEntityExtractor: unknown entities {sorted(unknown)}; "
                f"accepted: {list(CATALOG_ENTITIES)}"
            )

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        # Rasa reuses a cached training result unless this changes: a new
        # vocabulary with unchanged training data must still retrain this node.
        return hashlib.sha256(_vocabulary_path(config).read_bytes()).hexdigest()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CatalogEntityExtractor:
        return cls({**cls.get_default_config(), **config}, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CatalogEntityExtractor:
        config = {**cls.get_default_config(), **config}
        with model_storage.read_from(resource) as directory:
            vocabulary = json.loads((directory / _FILE).read_text(encoding="utf-8"))
        return cls(config, model_storage, resource, vocabulary)

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: dict[str, Any] | None = None,
    ) -> None:
        self.validate_config(config)
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._entities = frozenset(config["entities"])
        self._vocabulary = vocabulary
        self._matcher = TermMatcher(vocabulary) if vocabulary else None

    def train(self, training_data: TrainingData) -> Resource:
        self._vocabulary = load_vocabulary(_vocabulary_path(self._config))
        self._matcher = TermMatcher(self._vocabulary)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / _FILE).write_text(
                json.dumps(self._vocabulary, ensure_ascii=False), encoding="utf-8"
            )
        counts = {e: len(v) for e, v in self._vocabulary["entities"].items()}
        logger.info("catalog vocabulary loaded: %s", counts)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data  # annotations in the data are the truth while training

    def process(self, messages: list[Message]) -> list[Message]:
        if self._matcher is None:
            return messages
        for message in messages:
            found = [
                m
                for m in self._matcher.find(message.get(TEXT) or "")
                if m.entity in self._entities
            ]
            message.set(
                ENTITIES,
                self._merge(message.get(ENTITIES, []), found),
                add_to_output=True,
            )
        return messages

    def _merge(
        self, entities: list[dict[str, Any]], found: list[Match]
    ) -> list[dict[str, Any]]:
        for match in found:
            overlapping = [e for e in entities if _overlaps(e, match.start, match.end)]
            if any(_contains_other(e, match) for e in overlapping):
                continue  # inside a product name DIET found ("Junoo Jacket")
            entities = [e for e in entities if e not in overlapping]
            entities.append(_entity(match, self.name))
        return sorted(entities, key=lambda e: e.get("start", 0))


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class PriceEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Turns "under 50", "between 20 and 40", "around 50" into ``min_price`` and
    ``max_price`` with numbers, and "cheaper" into ``price_direction``."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        return None  # nothing to configure

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PriceEntityExtractor:
        cls.validate_config(config)
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            found = find_prices(message.get(TEXT) or "")
            if not found:
                continue
            # A number in a price phrase is a price, whatever DIET thought it was.
            kept = [
                e
                for e in message.get(ENTITIES, [])
                if not any(_overlaps(e, m.start, m.end) for m in found)
            ]
            prices = [_entity(m, self.name) for m in found]
            entities = sorted(kept + prices, key=lambda e: e.get("start", 0))
            message.set(ENTITIES, entities, add_to_output=True)
        return messages


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class OptOutKeywordClassifier(GraphComponent):
    """A message that is only an opt-out keyword ("STOP") is ``unsubscribe``,
    whatever the classifier before it thought: messaging rules require it.

    Goes last in the pipeline, after FallbackClassifier, so a low confidence cannot
    turn "stop" into a fallback."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"keywords": ["stop", "stop all", "stopall", "unsubscribe"]}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        keywords = config.get("keywords")
        if not isinstance(keywords, list) or not all(
            isinstance(k, str) and k.strip() for k in keywords
        ):
            raise ValueError(
                f"OptOutKeywordClassifier: keywords must be a list of words, "
                f"got {keywords!r}"
            )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> OptOutKeywordClassifier:
        config = {**cls.get_default_config(), **config}
        cls.validate_config(config)
        return cls(config["keywords"])

    def __init__(self, keywords: list[str]) -> None:
        self._keywords = frozenset(_bare(k) for k in keywords)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if _bare(message.get(TEXT) or "") not in self._keywords:
                continue
            intent = {"name": "unsubscribe", "confidence": 1.0}
            ranking = [
                r
                for r in message.get("intent_ranking") or []
                if r.get("name") != "unsubscribe"
            ]
            message.set(INTENT, intent, add_to_output=True)
            message.set("intent_ranking", [intent, *ranking], add_to_output=True)
        return messages


def _bare(text: str) -> str:
    """Lower case, without punctuation or repeated spaces: "STOP!" is "stop"."""
    return " ".join("".join(c if c.isalnum() else " " for c in text).lower().split())


def _vocabulary_path(config: dict[str, Any]) -> Path:
    return Path(config.get("vocabulary") or VOCABULARY_PATH)


def _overlaps(entity: dict[str, Any], start: int, end: int) -> bool:
    return entity.get("start", -1) < end and start < entity.get("end", -1)


def _contains_other(entity: dict[str, Any], match: Match) -> bool:
    return (
        entity.get("entity") == "product" != match.entity
        and entity.get("start", 0) <= match.start
        and entity.get("end", 0) >= match.end
        and entity.get("end", 0) - entity.get("start", 0) > match.end - match.start
    )


def _entity(match: Match | PriceMatch, extractor: str) -> dict[str, Any]:
    """A match in the shape Rasa gives every extracted entity."""
    return {
        "entity": match.entity,
        "value": match.value,
        "start": match.start,
        "end": match.end,
        "confidence_entity": 1.0,
        "extractor": extractor,
    }
