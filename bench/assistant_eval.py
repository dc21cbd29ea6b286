"""Quality of the assistant's NLU, printed as figures. Runs in Rasa's environment:

    .venv-rasa/bin/python bench/assistant_eval.py [--model PATH] [--json]
    .venv-rasa/bin/python bench/assistant_eval.py --cross-validation [--folds 5]

With a trained model (default assistant/models/assistant.tar.gz) it prints:
(a) intent accuracy on Bitext's customer-support sentences whose intent maps to ours;
(b) the share of CLINC150's out-of-scope sentences that end in nlu_fallback or
    out_of_scope, and where the others went;
(c) accuracy, per-intent F1 and entity precision/recall on our held-out test set.
The slices are in data/eval/assistant/ (see SOURCE.md there); none is trained on.
``--cross-validation`` instead trains and tests k folds of our own training data
(assistant/data/nlu/) with ``rasa test nlu`` and prints per-intent F1: slow, about
k trainings.
"""

import argparse
import asyncio
import csv
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT / "data" / "eval" / "assistant"
ASSISTANT_DIR = ROOT / "assistant"
DEFAULT_MODEL = ASSISTANT_DIR / "models" / "assistant.tar.gz"
FALLBACK_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
# Messaging rules: these alone must always opt out.
OPT_OUT_MESSAGES = ("stop", "STOP", "Stop!", "stop all", "unsubscribe")
TARGETS = {"bitext_accuracy": 0.90, "clinc_oos_fallback_share": 0.85}

# Rasa imports our pipeline components (assistant.nlu) from the repository.
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--cross-validation", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    if args.cross_validation:
        report = cross_validate(args.folds)
        print_f1(
            f"{args.folds}-fold cross-validation of assistant/data/nlu, intent F1",
            report["intents"],
        )
        print("entity F1, each by the extractor that gives it")
        for name, values in sorted(report["entities"].items()):
            print(f"    {name:28} {values['f1-score']:.3f}  ({values['extractor']})")
        if args.json:
            print(json.dumps(report, sort_keys=True))
        return
    if not args.model.exists():
        sys.exit(f"{args.model} not found: train first (cdp assistant train)")
    figures = asyncio.run(evaluate(args.model))
    print_figures(figures)
    if args.json:
        print(json.dumps(figures, sort_keys=True))


async def evaluate(model: Path) -> dict[str, Any]:
    started = time.perf_counter()
    agent = load_agent(model)
    loaded = time.perf_counter()
    bitext = read_csv(EVAL_DIR / "bitext-support-scored.csv")
    clinc = read_csv(EVAL_DIR / "clinc150-oos.csv")
    held_out = read_test_set(EVAL_DIR / "shopping-test.yml")

    bitext_predicted = [await intent_of(agent, row["text"]) for row in bitext]
    clinc_predicted = [await intent_of(agent, row["text"]) for row in clinc]
    parses = [await agent.parse_message(example["text"]) for example in held_out]
    opt_outs = {text: await intent_of(agent, text) for text in OPT_OUT_MESSAGES}
    parsed = time.perf_counter()

    messages = len(bitext) + len(clinc) + len(held_out)
    return {
        "model": str(model),
        "load_seconds": round(loaded - started, 1),
        "parse_ms": round(1000 * (parsed - loaded) / messages, 1),
        **bitext_figures(bitext, bitext_predicted),
        **clinc_figures(clinc, clinc_predicted),
        **held_out_figures(held_out, parses),
        "opt_out_intents": opt_outs,
    }


def load_agent(model: Path) -> Any:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    logging.basicConfig(level=logging.WARNING)
    configure_structlog(logging.WARNING)
    for name in ("rasa", "tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return Agent.load(str(model))


async def intent_of(agent: Any, text: str) -> str:
    result = await agent.parse_message(text)
    return str((result.get("intent") or {}).get("name"))


def bitext_figures(rows: list[dict[str, str]], predicted: list[str]) -> dict[str, Any]:
    per_source: dict[str, list[bool]] = defaultdict(list)
    confusions: Counter[tuple[str, str]] = Counter()
    for row, intent in zip(rows, predicted, strict=True):
        per_source[row["bitext_intent"]].append(intent == row["intent"])
        if intent != row["intent"]:
            confusions[(row["intent"], intent)] += 1
    correct = sum(sum(hits) for hits in per_source.values())
    return {
        "bitext_rows": len(rows),
        "bitext_accuracy": round(correct / len(rows), 4),
        "bitext_accuracy_by_bitext_intent": {
            name: round(sum(hits) / len(hits), 3)
            for name, hits in sorted(per_source.items())
        },
        "bitext_top_confusions": [
            f"{truth} -> {guess}: {n}"
            for (truth, guess), n in confusions.most_common(8)
        ],
    }


def clinc_figures(rows: list[dict[str, str]], predicted: list[str]) -> dict[str, Any]:
    caught = [intent in FALLBACK_INTENTS for intent in predicted]
    by_split: dict[str, list[bool]] = defaultdict(list)
    for row, hit in zip(rows, caught, strict=True):
        by_split[row["split"]].append(hit)
    escaped = Counter(i for i in predicted if i not in FALLBACK_INTENTS)
    return {
        "clinc_oos_sentences": len(rows),
        "clinc_oos_fallback_share": round(sum(caught) / len(rows), 4),
        "clinc_oos_fallback_share_by_split": {
            split: round(sum(hits) / len(hits), 3)
            for split, hits in sorted(by_split.items())
        },
        "clinc_oos_sent_to": dict(escaped.most_common()),
        "clinc_oos_examples_sent_to_an_intent": [
            f"{row['text']} -> {intent}"
            for row, intent in zip(rows, predicted, strict=True)
            if intent not in FALLBACK_INTENTS
        ][:15],
    }


def held_out_figures(
    examples: list[dict[str, Any]], parses: list[dict[str, Any]]
) -> dict[str, Any]:
    truth = [e["intent"] for e in examples]
    guess = [str((p.get("intent") or {}).get("name")) for p in parses]
    report = f1_report(truth, guess)
    entity_hits: dict[str, Counter[str]] = defaultdict(Counter)
    for example, parse in zip(examples, parses, strict=True):
        expected = {(e["entity"], _value(e["value"])) for e in example["entities"]}
        found = {(e["entity"], _value(e["value"])) for e in parse.get("entities", [])}
        for entity, _ in expected & found:
            entity_hits[entity]["tp"] += 1
        for entity, _ in expected - found:
            entity_hits[entity]["fn"] += 1
        for entity, _ in found - expected:
            entity_hits[entity]["fp"] += 1
    return {
        "held_out_examples": len(examples),
        "held_out_accuracy": round(
            sum(t == g for t, g in zip(truth, guess, strict=True)) / len(truth), 4
        ),
        "held_out_macro_f1": report["macro avg"]["f1-score"],
        "held_out_f1_by_intent": {
            name: values["f1-score"]
            for name, values in sorted(report.items())
            if name != "accuracy" and not name.endswith(" avg")
        },
        "held_out_errors": [
            f"{e['text']} ({t} -> {g})"
            for e, t, g in zip(examples, truth, guess, strict=True)
            if t != g
        ],
        "held_out_entities": {
            entity: _precision_recall(counts)
            for entity, counts in sorted(entity_hits.items())
        },
    }


def f1_report(truth: list[str], guess: list[str]) -> dict[str, Any]:
    from sklearn.metrics import classification_report

    labels = sorted(set(truth))
    report = classification_report(
        truth, guess, labels=labels, output_dict=True, zero_division=0
    )
    return {
        name: {k: round(v, 3) for k, v in values.items()}
        if isinstance(values, dict)
        else values
        for name, values in report.items()
    }


def cross_validate(folds: int) -> dict[str, Any]:
    """k-fold cross-validation of our training data with Rasa's own tester."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [
            str(Path(sys.executable).with_name("rasa")), "test", "nlu",
            "--nlu", "data/nlu", "--config", "config.yml", "--cross-validation",
            "--folds", str(folds), "--out", out, "--no-plot",
        ]  # fmt: skip
        started = time.perf_counter()
        # Rasa's own progress goes to stderr, so that stdout stays the report.
        subprocess.run(
            command, cwd=ASSISTANT_DIR, env=env, check=True, stdout=sys.stderr
        )
        print(f"cross-validation took {time.perf_counter() - started:.0f}s")
        reports = {
            path.name.removesuffix("_report.json"): _rounded(
                json.loads(path.read_text())
            )
            for path in Path(out).glob("*_report.json")
        }
    intents = reports.pop("intent", {})
    # Rasa scores each extractor on the entities that carry its name. Ours replace
    # the CRF's entities where they overlap, so each entity is scored by the
    # extractor that gives it: the one with the best F1 for it.
    entities: dict[str, dict[str, Any]] = {}
    for extractor, report in reports.items():
        for name, values in report.items():
            if "avg" in name or not values.get("f1-score", 0.0):
                continue
            if values["f1-score"] > entities.get(name, {}).get("f1-score", 0.0):
                entities[name] = {**values, "extractor": extractor}
    return {"folds": folds, "intents": intents, "entities": entities}


def _rounded(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        name: {k: round(v, 3) for k, v in values.items() if isinstance(v, float)}
        for name, values in report.items()
        if isinstance(values, dict)
    }


def print_figures(figures: dict[str, Any]) -> None:
    def mark(name: str) -> str:
        target = TARGETS.get(name)
        if target is None:
            return ""
        return (
            f"  (target {target:.2f}: {'met' if figures[name] >= target else 'MISSED'})"
        )

    print(f"model {figures['model']}: loaded in {figures['load_seconds']}s, "
          f"{figures['parse_ms']} ms a message")  # fmt: skip
    print(f"\n(a) Bitext intent accuracy, {figures['bitext_rows']} rows: "
          f"{figures['bitext_accuracy']:.3f}{mark('bitext_accuracy')}")  # fmt: skip
    for name, value in figures["bitext_accuracy_by_bitext_intent"].items():
        print(f"    {name:28} {value:.3f}")
    print(
        "    most frequent confusions: " + "; ".join(figures["bitext_top_confusions"])
    )
    print(f"\n(b) CLINC150 out-of-scope sentences ending in a fallback intent, "
          f"{figures['clinc_oos_sentences']}: {figures['clinc_oos_fallback_share']:.3f}"
          f"{mark('clinc_oos_fallback_share')}")  # fmt: skip
    print(f"    by split: {figures['clinc_oos_fallback_share_by_split']}")
    print(f"    the others went to: {figures['clinc_oos_sent_to']}")
    for line in figures["clinc_oos_examples_sent_to_an_intent"]:
        print(f"      {line}")
    print(f"\n(c) held-out test set, {figures['held_out_examples']} messages: accuracy "
          f"{figures['held_out_accuracy']:.3f}, macro F1 "
          f"{figures['held_out_macro_f1']:.3f}")  # fmt: skip
    print_f1("    F1 by intent", {
        k: {"f1-score": v} for k, v in figures["held_out_f1_by_intent"].items()
    })  # fmt: skip
    for line in figures["held_out_errors"]:
        print(f"      wrong: {line}")
    print(f"    opt-out messages: {figures['opt_out_intents']}")
    print("    entities (precision / recall / count):")
    for entity, values in figures["held_out_entities"].items():
        print(f"      {entity:16} {values['precision']:.2f} / {values['recall']:.2f} "
              f"/ {values['support']}")  # fmt: skip


def print_f1(title: str, report: dict[str, Any]) -> None:
    print(title)
    for name, values in sorted(report.items()):
        if "f1-score" in values:
            print(f"    {name:28} {values['f1-score']:.3f}")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def read_test_set(path: Path) -> list[dict[str, Any]]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [
        {
            "text": m.get("text"),
            "intent": m.get("intent"),
            "entities": m.get("entities") or [],
        }
        for m in data.intent_examples
    ]


def _value(value: Any) -> str:
    """Compare numbers as numbers ("50" and 50.0) and words case-insensitively."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value).casefold()


def _precision_recall(counts: Counter[str]) -> dict[str, float]:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 0.0,
        "support": tp + fn,
    }


if __name__ == "__main__":
    main()
