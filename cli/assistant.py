"""Training the Rasa model in Rasa's own environment, only when its inputs changed."""

import hashlib
import logging
import os
import subprocess
from pathlib import Path

from core.settings import ROOT

logger = logging.getLogger(__name__)

ASSISTANT_DIR = ROOT / "assistant"
MODELS_DIR = ASSISTANT_DIR / "models"
MODEL_NAME = "assistant"
_INPUTS = ("config.yml", "domain.yml", "data", "nlu")


def rasa_executable() -> Path:
    return Path(os.environ.get("CDP_RASA_VENV", ROOT / ".venv-rasa")) / "bin" / "rasa"


def fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _INPUTS:
        path = ASSISTANT_DIR / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(ASSISTANT_DIR)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def model_path() -> Path:
    return MODELS_DIR / f"{MODEL_NAME}.tar.gz"


def is_trained() -> bool:
    stamp = MODELS_DIR / ".fingerprint"
    return (
        model_path().exists() and stamp.exists() and stamp.read_text() == fingerprint()
    )


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["PYTHONPATH"] = str(ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def train(*, force: bool = False) -> bool:
    """Train if the data changed; True when a new model was trained."""
    if not force and is_trained():
        logger.info("assistant model is up to date", extra={"model": str(model_path())})
        return False
    executable = rasa_executable()
    if not executable.exists():
        raise FileNotFoundError(
            f"{executable} not found: run `make setup` to create Rasa's environment"
        )
    command = [
        str(executable), "train", "--fixed-model-name", MODEL_NAME,
        "--out", str(MODELS_DIR), "--force" if force else "",
    ]  # fmt: skip
    subprocess.run(
        [c for c in command if c], cwd=ASSISTANT_DIR, env=rasa_env(), check=True
    )
    (MODELS_DIR / ".fingerprint").write_text(fingerprint())
    return True
