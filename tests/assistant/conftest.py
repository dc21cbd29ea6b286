"""The cross-validation of the NLU training data trains one model per fold, which
takes minutes. It starts as soon as collection shows that its test will run, at the
lowest CPU priority beside the other tests, and its test waits for it."""

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.assistant import rasa_env, rasa_executable
from core.settings import ROOT

CROSS_VALIDATION_TEST = "test_cross_validation_of_the_training_data"
FOLDS = 3
_RUN = pytest.StashKey["CrossValidation"]()


@dataclass
class CrossValidation:
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if _RUN in config.stash or not rasa_executable().exists():
        return
    if not any(item.name == CROSS_VALIDATION_TEST for item in items):
        return
    folder = Path(tempfile.mkdtemp(prefix="cdp-cross-validation-"))
    stdout, stderr = folder / "stdout.txt", folder / "stderr.txt"
    python = rasa_executable().parent / "python"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            ["nice", "-n", "19", str(python), str(ROOT / "bench" / "assistant_eval.py"),
             "--cross-validation", "--folds", str(FOLDS), "--json"],
            env=rasa_env(), stdout=out, stderr=err,
        )  # fmt: skip
    config.stash[_RUN] = CrossValidation(process, stdout, stderr)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(_RUN, None)
    if run is not None and run.process.poll() is None:
        run.process.terminate()
        run.process.wait(timeout=30)


@pytest.fixture(scope="session")
def cross_validation(request: pytest.FixtureRequest) -> dict[str, Any]:
    run = request.config.stash.get(_RUN, None)
    if run is None:
        pytest.skip("Rasa's environment is not set up (make setup)")
    returncode = run.process.wait(timeout=1800)
    assert returncode == 0, run.stderr.read_text(errors="replace")[-3000:]
    *report, last = run.stdout.read_text().strip().splitlines()
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(report))
    return dict(json.loads(last))
