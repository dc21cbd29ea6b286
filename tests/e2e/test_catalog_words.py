"""A catalog change reaches the running assistant's words without training again."""

import uuid

import httpx
import pytest

from cli.stack import Stack
from tests.conftest import bearer
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e

KAYAK_CSV = (
    "sku,name,category,price,qty,description\n"
    'KY-E2E-1,Riverline Touring Kayak,"Gear\nKayaks",499.00,4,'
    "A stable touring kayak for lakes and slow rivers.\n"
)


def categories_understood(stack: Stack, text: str) -> list[str]:
    parsed = httpx.post(
        f"{stack.rasa_url}/model/parse", params={"token": stack.rasa_token},
        json={"text": text}, timeout=10,
    ).json()  # fmt: skip
    return [e["value"] for e in parsed["entities"] if e["entity"] == "category"]


def test_a_new_category_is_understood_in_the_chat_within_seconds(
    stack: Stack,
) -> None:
    question = "do you have kayaks?"
    assert categories_understood(stack, question) == []  # the demo sells none

    imported = httpx.post(
        f"{stack.api_url}/v1/imports/catalog", headers=bearer(),
        data={"format": "magento-simple"},
        files={"file": ("kayaks.csv", KAYAK_CSV, "text/csv")}, timeout=30,
    )  # fmt: skip

    assert imported.status_code == 200, imported.text
    assert eventually(lambda: categories_understood(stack, question), timeout=20) == [
        "kayak"
    ]
    replies = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": f"visitor-{uuid.uuid4().hex[:8]}", "message": question},
        timeout=30,
    ).json()  # fmt: skip
    listed = [
        line[2:].rsplit(": $", 1)[0]
        for line in replies[0]["text"].splitlines()
        if line.startswith("- ")
    ]
    # Searched as the kayak category, not as loose words: only the kayak comes back.
    assert listed == ["Riverline Touring Kayak"], replies
