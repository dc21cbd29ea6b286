"""Checks that run inside Rasa's own environment (Python 3.10, rasa 3.6)."""

import json
import subprocess

import pytest

from cli.assistant import ASSISTANT_DIR, rasa_env, rasa_executable

pytestmark = pytest.mark.skipif(
    not rasa_executable().exists(),
    reason="Rasa's environment is not set up (make setup)",
)


def test_rasa_data_validate_finds_no_problem() -> None:
    result = subprocess.run(
        [str(rasa_executable()), "data", "validate", "--fail-on-warnings"],
        cwd=ASSISTANT_DIR, env=rasa_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_broker_turns_a_user_message_into_a_profile_event() -> None:
    rasa_event = {
        "event": "user", "sender_id": "visitor-1", "text": "a jacket",
        "timestamp": 1767225600.5, "message_id": "abc", "input_channel": "rest",
        "parse_data": {"intent": {"name": "search_product", "confidence": 0.97}},
    }  # fmt: skip
    script = (
        "import json, sys; from assistant.broker import to_envelope; "
        "print(json.dumps(to_envelope(json.loads(sys.argv[1]))))"
    )
    python = rasa_executable().parent / "python"

    result = subprocess.run(
        [str(python), "-c", script, json.dumps(rasa_event)],
        env=rasa_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip

    envelope = json.loads(result.stdout.strip().splitlines()[-1])
    assert envelope["type"] == "track"
    assert envelope["event"] == "Chat Message Received"
    assert envelope["anonymousId"] == "visitor-1"
    assert envelope["messageId"] == "rasa-user-abc"
    assert envelope["timestamp"] == "2026-01-01T00:00:00.500000+00:00"
    assert envelope["properties"]["intent"] == "search_product"
