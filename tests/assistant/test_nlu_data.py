"""The NLU training data: consistent with the domain and the catalog vocabulary,
aligned with Rasa's tokens, and disjoint from everything the evaluation scores."""

import csv
import json
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.nlu.catalog_terms import load_vocabulary, normalise
from cli.assistant import ASSISTANT_DIR, rasa_env, rasa_executable
from core.settings import ROOT

NLU_DIR = ASSISTANT_DIR / "data" / "nlu"
EVAL_DIR = ROOT / "data" / "eval" / "assistant"
HELD_OUT = EVAL_DIR / "shopping-test.yml"
# Entities whose values the catalog extractor gives: annotations must agree with it.
CATALOG_VALUED = ("category", "color", "size", "material", "gender")
# Domain intents no shopper types: the platform sends them.
NEVER_TYPED = frozenset({"nlu_fallback", "campaign_nudge"})
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\((\w+)(?::([^)]+))?\)|(\{[^}]+\}))")


def examples(path: Path) -> list[tuple[str, str]]:
    """(example line, intent) pairs of a Rasa NLU YAML file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = []
    for block in document.get("nlu", []):
        if "intent" in block:
            for line in block["examples"].splitlines():
                if line.startswith("- "):
                    found.append((line[2:], block["intent"]))
    return found


def annotations(line: str) -> list[tuple[str, str, str]]:
    """(text, entity, value) of each annotation in an example line."""
    found = []
    for text, entity, value, attributes in _ANNOTATION.findall(line):
        if attributes:
            parsed = json.loads(attributes)
            entity, value = parsed["entity"], str(parsed.get("value", text))
        found.append((text, entity, value or text))
    return found


def plain(line: str) -> str:
    """The message a shopper would type, for comparing sentences."""
    text = _ANNOTATION.sub(lambda m: m.group(1), line)
    return " ".join(text.lower().split()).strip(" ?!.")


def training_lines() -> list[tuple[str, str]]:
    return [pair for path in sorted(NLU_DIR.glob("*.yml")) for pair in examples(path)]


@pytest.mark.parametrize("path", [*sorted(NLU_DIR.glob("*.yml")), HELD_OUT], ids=str)
def test_annotated_catalog_values_are_the_vocabularys(path: Path) -> None:
    vocabulary = load_vocabulary()["entities"]
    products = {normalise(name) for name in vocabulary["product"]}
    wrong = []
    for line, _ in examples(path):
        for text, entity, value in annotations(line):
            if entity in CATALOG_VALUED and value not in vocabulary[entity]:
                wrong.append(f"{entity}={value!r} in {line!r}")
            if entity == "product" and normalise(text) not in products:
                wrong.append(f"product {text!r} is not in the catalog: {line!r}")

    assert not wrong, "\n".join(wrong)


def test_no_sentence_the_evaluation_scores_is_trained_on() -> None:
    trained = {plain(line) for line, _ in training_lines()}
    scored = {
        "held-out": [plain(line) for line, _ in examples(HELD_OUT)],
        "bitext": [plain(r["text"]) for r in read_csv("bitext-support-scored.csv")],
        "clinc oos": [plain(r["text"]) for r in read_csv("clinc150-oos.csv")],
    }

    overlap = {
        name: [s for s in texts if s in trained] for name, texts in scored.items()
    }

    assert overlap == {"held-out": [], "bitext": [], "clinc oos": []}


def test_every_intent_the_shopper_can_type_has_examples_and_no_example_two() -> None:
    domain = yaml.safe_load((ASSISTANT_DIR / "domain.yml").read_text())
    by_text: dict[str, set[str]] = {}
    for line, intent in training_lines():
        by_text.setdefault(plain(line), set()).add(intent)
    trained = {i for intents in by_text.values() for i in intents}

    assert trained == set(domain["intents"]) - NEVER_TYPED
    assert {t: i for t, i in by_text.items() if len(i) > 1} == {}


RASA_SCRIPT = textwrap.dedent(
    """
    import json
    from pathlib import Path
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    misaligned = []
    held_out = "../data/eval/assistant/shopping-test.yml"
    paths = [*Path("data/nlu").glob("*.yml"), held_out]
    for path in paths:
        for message in load_data(str(path)).training_examples:
            entities = message.get("entities") or []
            if not entities:
                continue
            tokens = tokenizer.tokenize(message, "text")
            starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
            for e in entities:
                if e["start"] not in starts or e["end"] not in ends:
                    misaligned.append(f"{e['entity']} in {message.get('text')!r}")
    print(json.dumps(misaligned))
    """
)


def test_entity_annotations_cover_whole_tokens() -> None:
    """Rasa drops an annotation that cuts a token ("$160" is one token)."""
    if not rasa_executable().exists():
        pytest.skip("Rasa's environment is not set up (make setup)")
    python = rasa_executable().parent / "python"

    result = subprocess.run(
        [str(python), "-c", RASA_SCRIPT], cwd=ASSISTANT_DIR, env=rasa_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def read_csv(name: str) -> list[dict[str, Any]]:
    with (EVAL_DIR / name).open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))
