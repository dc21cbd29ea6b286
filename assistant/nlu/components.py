"""Rasa graph components: the catalog's words as features and entities, and price
limits as entities.

The featurizer runs before the intent classifier, the two extractors after the CRF
(``config.yml``). What a dictionary or a price pattern finds is surer than what the
CRF guesses for the same words, so their entities replace the CRF's where they
overlap; the CRF still finds what the dictionary does not know (a
misspelt colour, a product name typed loosely). Imported only in Rasa's environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
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

CATALOG_ENTITIES = (
    "category", "color", "size", "material", "gender", "product", "occasion", "brand"
)  # fmt: skip
# The vocabulary the platform publishes as the catalog changes (core.settings).
LIVE_VOCABULARY_ENV = "CDP_RASA__VOCABULARY_PATH"
_FILE = "vocabulary.json"


class CatalogWords:
    """The vocabulary a component matches: the one trained into the model and,
    once ``follow`` names it, the file the platform publishes as the catalog
    changes, looked at at most every ``check_seconds`` and read again when it
    changed. A file that cannot be read leaves the terms in use."""

    def __init__(self, vocabulary: dict[str, Any] | None, check_seconds: float) -> None:
        self.vocabulary = vocabulary
        self._matcher = TermMatcher(vocabulary) if vocabulary else None
        self._check_seconds = check_seconds
        self._live: Path | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._next_look = 0.0

    @classmethod
    def trained(cls, config: dict[str, Any]) -> CatalogWords:
        return cls(load_vocabulary(_vocabulary_path(config)), _seconds(config))

    @classmethod
    def stored(
        cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource
    ) -> CatalogWords:
        """The vocabulary trained into the model, following the published file
        when ``CDP_RASA__VOCABULARY_PATH`` names one."""
        with model_storage.read_from(resource) as directory:
            vocabulary = json.loads((directory / _FILE).read_text(encoding="utf-8"))
        words = cls(vocabulary, _seconds(config))
        live = os.environ.get(LIVE_VOCABULARY_ENV, "").strip()
        if live:
            words.follow(Path(live))
        return words

    def store(self, model_storage: ModelStorage, resource: Resource) -> None:
        with model_storage.write_to(resource) as directory:
            (directory / _FILE).write_text(
                json.dumps(self.vocabulary, ensure_ascii=False), encoding="utf-8"
            )

    def follow(self, path: Path) -> None:
        self._live = path
        self._next_look = 0.0
        self._look()

    def find(self, text: str) -> list[Match]:
        self._look()
        return self._matcher.find(text) if self._matcher is not None else []

    def _look(self) -> None:
        if self._live is None or time.monotonic() < self._next_look:
            return
        self._next_look = time.monotonic() + self._check_seconds
        try:
            stat = self._live.stat()
        except OSError:
            return  # not published yet: the trained vocabulary stays
        # The platform replaces the file, so a new one is a new inode as well.
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a broken file is reported once, not every look
        try:
            vocabulary = load_vocabulary(self._live)
            matcher = TermMatcher(vocabulary)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            logger.warning(
                "catalog vocabulary %s not read, the terms in use stay: %s",
                self._live, exc,
            )  # fmt: skip
            return
        self.vocabulary, self._matcher = vocabulary, matcher
        counts = {e: len(v) for e, v in vocabulary["entities"].items()}
        logger.info("catalog vocabulary %s read: %s", self._live, counts)


def _seconds(config: dict[str, Any]) -> float:
    return float(config.get("live_check_seconds", 1.0))


def _validate_words_config(component: str, config: dict[str, Any]) -> None:
    seconds = config.get("live_check_seconds", 1.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(
            f"{component}: live_check_seconds must be a number of seconds, 0 or "
            f"more, got {seconds!r}"
        )


def _vocabulary_fingerprint(config: dict[str, Any]) -> str:
    # Rasa reuses a cached training result unless this changes: a new vocabulary
    # with unchanged training data must still retrain the node.
    return hashlib.sha256(_vocabulary_path(config).read_bytes()).hexdigest()


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True
)
class CatalogTermFeaturizer(SparseFeaturizer, GraphComponent):
    """Marks each word of a message that is part of a catalog category, colour,
    size, material, department or product name, one feature per kind, and the
    message with the kinds it names.

    The intent classifier then learns from "a category was named" as well as from
    the category's own word, so a category the shop adds after training ("do you
    have kayaks?") reads as a search as surely as "jackets" does. The vocabulary
    follows the platform's published file like ``CatalogEntityExtractor``'s."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **SparseFeaturizer.get_default_config(),
            # vocabulary: the exported file; None is assistant/nlu/vocabulary.json.
            "vocabulary": None,
            "live_check_seconds": 1.0,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        _validate_words_config(cls.__name__, config)

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return _vocabulary_fingerprint(config)

    def __init__(
        self,
        config: dict[str, Any],
        name: str,
        model_storage: ModelStorage,
        resource: Resource,
        words: CatalogWords | None = None,
    ) -> None:
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._words = words

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CatalogTermFeaturizer:
        config = {**cls.get_default_config(), **config}
        return cls(config, execution_context.node_name, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CatalogTermFeaturizer:
        config = {**cls.get_default_config(), **config}
        words = CatalogWords.stored(config, model_storage, resource)
        return cls(config, execution_context.node_name, model_storage, resource, words)

    def train(self, training_data: TrainingData) -> Resource:
        self._words = CatalogWords.trained(self._config)
        self._words.store(self._model_storage, self._resource)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._featurize(example)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._featurize(message)
        return messages

    def _featurize(self, message: Message) -> None:
        tokens = message.get(TOKENS_NAMES[TEXT], [])
        if not tokens or self._words is None:
            return
        sequence = np.zeros((len(tokens), len(CATALOG_ENTITIES)))
        for match in self._words.find(message.get(TEXT) or ""):
            if match.entity not in CATALOG_ENTITIES:
                continue  # a hand-edited file's own kind
            column = CATALOG_ENTITIES.index(match.entity)
            for row, token in enumerate(tokens):
                if token.start < match.end and match.start < token.end:
                    sequence[row, column] = 1.0
        sentence = sequence.max(axis=0, keepdims=True)
        self.add_features_to_message(
            scipy.sparse.coo_matrix(sequence),
            scipy.sparse.coo_matrix(sentence),
            TEXT,
            message,
        )


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True
)
class CatalogEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Tags the shop's categories, colours, sizes, materials, genders and product
    names by dictionary match, with the catalog's own value for each.

    Training copies the vocabulary into the model, so a model answers with the
    vocabulary it was trained with wherever it runs. A running model also follows
    the file the platform publishes when the catalog changes (the path in
    ``CDP_RASA__VOCABULARY_PATH``), looked at at most every ``live_check_seconds``:
    a new category or product is found from the next message on."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # vocabulary: the exported file; None is assistant/nlu/vocabulary.json.
        return {
            "vocabulary": None,
            "entities": list(CATALOG_ENTITIES),
            "live_check_seconds": 1.0,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        unknown = set(config.get("entities") or []) - set(CATALOG_ENTITIES)
        if unknown:
            raise ValueError(
                f"CatalogEntityExtractor: unknown entities {sorted(unknown)}; "
                f"accepted: {list(CATALOG_ENTITIES)}"
            )
        _validate_words_config(cls.__name__, config)

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return _vocabulary_fingerprint(config)

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
        words = CatalogWords.stored(config, model_storage, resource)
        return cls(config, model_storage, resource, words)

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        words: CatalogWords | None = None,
    ) -> None:
        self.validate_config(config)
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._entities = frozenset(config["entities"])
        self._words = words

    def train(self, training_data: TrainingData) -> Resource:
        self._words = CatalogWords.trained(self._config)
        self._words.store(self._model_storage, self._resource)
        assert self._words.vocabulary is not None
        counts = {e: len(v) for e, v in self._words.vocabulary["entities"].items()}
        logger.info("catalog vocabulary loaded: %s", counts)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data  # annotations in the data are the truth while training

    def process(self, messages: list[Message]) -> list[Message]:
        if self._words is None:
            return messages
        for message in messages:
            found = [
                m
                for m in self._words.find(message.get(TEXT) or "")
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
                continue  # inside a product name the CRF found ("Junoo Jacket")
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
            # A number in a price phrase is a price, whatever the CRF thought it was.
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
