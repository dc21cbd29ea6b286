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
        "event = json.loads(sys.argv[1]); "
        "print(json.dumps([to_envelope(event), to_envelope(event, keep_text=True)]))"
    )
    python = rasa_executable().parent / "python"

    result = subprocess.run(
        [str(python), "-c", script, json.dumps(rasa_event)],
        env=rasa_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip

    envelope, with_text = json.loads(result.stdout.strip().splitlines()[-1])
    # The shop's privacy setting decides about the text; by default it stays out.
    assert "text" not in envelope["properties"]
    assert with_text["properties"]["text"] == "a jacket"
    assert envelope["type"] == "track"
    assert envelope["event"] == "Chat Message Received"
    assert envelope["anonymousId"] == "visitor-1"
    assert envelope["messageId"] == "rasa-user-abc"
    assert envelope["timestamp"] == "2026-01-01T00:00:00.500000+00:00"
    assert envelope["properties"]["intent"] == "search_product"


def test_every_capability_story_is_understood_and_answered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`rasa test core` on assistant/tests: each message gets the intended intent
    and the action its capability needs."""
    from cli.assistant import is_trained, model_path

    if not is_trained():
        pytest.fail(
            "the assistant model is missing or stale: run `cdp assistant train`"
        )
    result = subprocess.run(
        [str(rasa_executable()), "test", "core", "--model", str(model_path()),
         "--stories", "tests/test_stories.yml", "--out", str(tmp_path),
         "--fail-on-prediction-errors"],
        cwd=ASSISTANT_DIR, env=rasa_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    failed = tmp_path / "failed_test_stories.yml"
    report = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, report[-4000:] or result.stdout[-3000:]
