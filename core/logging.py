"""One JSON formatter for every process, configured once at start-up."""

import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("CDP_LOG_LEVEL", "INFO"))
    # Access logs would repeat every request; warnings and errors still come through.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every request's URL at INFO, and Rasa's status call carries its
    # token in the query string.
    logging.getLogger("httpx").setLevel(logging.WARNING)
