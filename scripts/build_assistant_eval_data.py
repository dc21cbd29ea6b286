"""Builds the assistant's evaluation slices and its CLINC150 out-of-scope examples
from the team's copies of the public datasets (../shared/data by default).

    .venv/bin/python scripts/build_assistant_eval_data.py [--shared ../shared/data]

Writes, deterministically (running it again changes no byte):
- data/eval/assistant/bitext-support-scored.csv: the rows of Bitext's Customer
  Support file whose intent maps to ours, with our intent;
- data/eval/assistant/clinc150-oos.csv: every out-of-scope sentence of CLINC150;
- assistant/data/nlu/out_of_scope_clinc150.yml: in-scope CLINC150 training sentences
  of domains a shop assistant does not serve, as out_of_scope examples;
- assistant/data/nlu/bitext_service.yml: a few sentences per mapped intent from
  Bitext's other file (Customer Service), none of which occurs in the scored one.
Licences and SOURCE.md beside them are kept by hand. See data/eval/assistant/SOURCE.md.
"""

import argparse
import csv
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT / "data" / "eval" / "assistant"
NLU_DIR = ROOT / "assistant" / "data" / "nlu"
BITEXT_DIR = "utterances-bitext-customer-support"
BITEXT_SCORED = f"{BITEXT_DIR}/Bitext_Sample_Customer_Support_Training_Dataset.csv"
BITEXT_TRAIN = f"{BITEXT_DIR}/Bitext_Sample_Customer_Service_Training_Dataset.csv"
CLINC = "utterances-clinc150/data_full.json"

BITEXT_TO_OURS = {
    "track_order": "order_status",
    "cancel_order": "cancel_order",
    "change_order": "change_order",
    "get_refund": "return_refund",
    "track_refund": "return_refund",
    "check_refund_policy": "return_refund",
    "delivery_options": "delivery_options",
    "delivery_period": "delivery_options",
    "check_payment_methods": "payment_methods",
    "contact_human_agent": "human_agent",
    "contact_customer_service": "human_agent",
    "newsletter_subscription": None,  # subscribe or unsubscribe, read per row
}
# Newsletter rows: an opt-out word makes it unsubscribe, a joining verb subscribe;
# the rest ("the status of my newsletter subscription") says neither and is left out.
_UNSUBSCRIBE = re.compile(r"unsub\w*|cancel\w*")
_SUBSCRIBE = re.compile(r"\b(?:su\w*cri\w*be|subscribing|sign(?:ing)? up|receiv\w*)\b")

# CLINC150 intents a shop assistant must not treat as out of scope: they are ours
# (greetings, yes and no, orders), small talk our chitchat covers, or close enough to
# a shopping question that teaching them as out of scope would blur ours.
CLINC_NOT_OUT_OF_SCOPE = frozenset(
    {
        "order", "order_status", "shopping_list", "shopping_list_update",
        "yes", "no", "maybe", "cancel", "repeat",
        "card_declined", "replacement_card_duration", "international_fees",
        "carry_on", "measurement_conversion",
    }
)  # fmt: skip
CLINC_NOT_OUT_OF_SCOPE_DOMAINS = frozenset({"small_talk"})
CLINC_PER_INTENT = 10
BITEXT_PER_INTENT = 20
SEED = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    EVAL_DIR.mkdir(parents=True, exist_ok=True)

    scored = bitext_scored(args.shared / BITEXT_SCORED)
    write_csv(
        EVAL_DIR / "bitext-support-scored.csv",
        ["text", "bitext_intent", "intent"],
        scored,
    )
    clinc = json.loads((args.shared / CLINC).read_text(encoding="utf-8"))
    domains = json.loads((args.shared / CLINC).with_name("domains.json").read_text())
    oos = [
        (text, split)
        for split in ("oos_train", "oos_val", "oos_test")
        for text, _ in clinc[split]
    ]
    write_csv(EVAL_DIR / "clinc150-oos.csv", ["text", "split"], oos)
    examples = clinc_out_of_scope(clinc["train"], domains, scored=oos)
    write_out_of_scope_yaml(NLU_DIR / "out_of_scope_clinc150.yml", examples)
    bitext = bitext_training(args.shared / BITEXT_TRAIN, scored=scored)
    write_bitext_yaml(NLU_DIR / "bitext_service.yml", bitext)
    print(
        f"bitext rows scored: {len(scored)}; clinc oos sentences: {len(oos)}; "
        f"out_of_scope examples: {len(examples)}; bitext examples: {len(bitext)}"
    )


def bitext_scored(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    excluded = 0
    with path.open(encoding="utf-8-sig", newline="") as file:
        for row in csv.DictReader(file):
            if row["intent"] not in BITEXT_TO_OURS:
                continue
            ours = BITEXT_TO_OURS[row["intent"]] or newsletter_intent(
                row["instruction"]
            )
            if ours is None:
                excluded += 1
                continue
            rows.append((row["instruction"].strip(), row["intent"], ours))
    print(f"bitext newsletter rows that say neither, left out: {excluded}")
    return rows


def bitext_training(
    path: Path, *, scored: list[tuple[str, str, str]]
) -> list[tuple[str, str]]:
    """``BITEXT_PER_INTENT`` sentences of each mapped intent of the Customer Service
    file, leaving out any that also occurs in the scored file."""
    scored_texts = {_key(text) for text, _, _ in scored}
    by_intent: dict[str, set[str]] = {}
    with path.open(encoding="utf-8-sig", newline="") as file:
        for row in csv.DictReader(file):
            text = row["utterance"].strip()
            if row["intent"] in BITEXT_TO_OURS and _key(text) not in scored_texts:
                by_intent.setdefault(row["intent"], set()).add(text)
    rng = random.Random(SEED)
    examples = []
    for source in sorted(by_intent):
        for text in rng.sample(sorted(by_intent[source]), BITEXT_PER_INTENT):
            ours = BITEXT_TO_OURS[source] or newsletter_intent(text)
            if ours is not None:
                examples.append((text, ours))
    return examples


def write_bitext_yaml(path: Path, examples: list[tuple[str, str]]) -> None:
    lines = [
        'version: "3.1"',
        "",
        "# Generated by scripts/build_assistant_eval_data.py: do not edit by hand.",
        "# Bitext's Customer Service sample (CDLA-Sharing 1.0, licence in",
        "# LICENSE_CDLA-Sharing-1.0.txt beside this file): "
        f"{BITEXT_PER_INTENT} sentences of each",
        "# Bitext intent that maps to ours, mapped as data/eval/assistant/SOURCE.md",
        "# says. A sentence that also occurs in the Customer Support file, which the",
        "# evaluation scores, is left out.",
        "",
        "nlu:",
    ]
    by_intent: dict[str, list[str]] = {}
    for text, intent in examples:
        by_intent.setdefault(intent, []).append(text)
    seen: set[str] = set()
    for intent in sorted(by_intent):
        lines += [f"  - intent: {intent}", "    examples: |"]
        for text in by_intent[intent]:
            if _key(text) not in seen:
                seen.add(_key(text))
                lines.append(f"      - {text}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def newsletter_intent(text: str) -> str | None:
    lowered = text.lower()
    if _UNSUBSCRIBE.search(lowered):
        return "unsubscribe"
    if _SUBSCRIBE.search(lowered):
        return "subscribe"
    return None


def clinc_out_of_scope(
    train: list[list[str]],
    domains: dict[str, list[str]],
    *,
    scored: list[tuple[str, str]],
) -> list[tuple[str, str]]:
    """``CLINC_PER_INTENT`` sentences of each non-shopping intent, from the train split
    (never the out-of-scope sentences the evaluation scores)."""
    excluded = set(CLINC_NOT_OUT_OF_SCOPE)
    for domain in CLINC_NOT_OUT_OF_SCOPE_DOMAINS:
        excluded.update(domains[domain])
    scored_texts = {_key(text) for text, _ in scored}
    by_intent: dict[str, list[str]] = {}
    for text, intent in train:
        if intent not in excluded and _key(text) not in scored_texts:
            by_intent.setdefault(intent, []).append(text)
    rng = random.Random(SEED)
    examples = []
    for intent in sorted(by_intent):
        texts = sorted(set(by_intent[intent]))
        examples.extend((text, intent) for text in rng.sample(texts, CLINC_PER_INTENT))
    return examples


def write_out_of_scope_yaml(path: Path, examples: list[tuple[str, str]]) -> None:
    lines = [
        'version: "3.1"',
        "",
        "# Generated by scripts/build_assistant_eval_data.py: do not edit by hand.",
        "# In-scope sentences of CLINC150's training split (Larson et al., 2019; CC BY",
        "# 3.0, LICENSE_CC-BY-3.0.txt beside this file) from domains a shop does not",
        "# serve (banking, travel, cooking, ...), as out_of_scope,",
        f"# {CLINC_PER_INTENT} per CLINC intent. None of CLINC's own out-of-scope",
        "# sentences is used: the evaluation scores those.",
        "",
        "nlu:",
        "  - intent: out_of_scope",
        "    examples: |",
    ]
    seen: set[str] = set()
    for text, _ in examples:
        if _key(text) not in seen:
            seen.add(_key(text))
            lines.append(f"      - {text.strip()}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_csv(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _key(text: str) -> str:
    return " ".join(text.lower().split())


if __name__ == "__main__":
    main()
