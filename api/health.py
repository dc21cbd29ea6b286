"""Health of every component, so an operator sees at once which one is down."""

from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from campaigns.worker import HEARTBEAT_SUFFIX as CAMPAIGNS_HEARTBEAT_SUFFIX
from channels.rasa import get_rasa
from core import db
from core.redis import get_redis
from core.settings import get_settings
from events.worker import HEARTBEAT_SUFFIX

router = APIRouter(tags=["health"])
# Written by assistant/broker.py inside Rasa, next to the stream it publishes to.
BROKER_HEARTBEAT_SUFFIX = ":broker-heartbeat"


class Component(BaseModel):
    status: Literal["up", "down"]
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, Component]


def _check(probe: Any) -> Component:
    try:
        return Component(status="up", detail=probe() or "")
    except Exception as exc:
        return Component(status="down", detail=f"{type(exc).__name__}: {exc}"[:300])


def _database() -> str:
    db.ping()
    return db.get_engine().url.get_backend_name()


def _redis() -> str:
    get_redis().ping()
    return "ping ok"


def _worker(suffix: str = HEARTBEAT_SUFFIX, within: str = "15 s") -> str:
    beat = get_redis().get(get_settings().tracking.stream + suffix)
    if not beat:
        raise RuntimeError(f"no heartbeat in the last {within}")
    age = (datetime.now(UTC) - datetime.fromisoformat(beat)).total_seconds()
    return f"last heartbeat {age:.0f}s ago"


def _index(request: Request) -> str:
    recommender = getattr(request.app.state, "recommender", None)
    if recommender is None:
        raise RuntimeError("not loaded")
    if not len(recommender.index):
        raise RuntimeError("empty: import a catalog")
    return f"{len(recommender.index)} products"


def _rasa() -> str:
    model = get_rasa().status().get("model_file") or ""
    if not model:
        raise RuntimeError("running without a trained model")
    return model.rsplit("/", 1)[-1]


def _conversation_events() -> str:
    # Written by assistant.broker inside Rasa; absent when Rasa skipped the broker.
    key = get_settings().tracking.stream + BROKER_HEARTBEAT_SUFFIX
    if not get_redis().exists(key):
        raise RuntimeError(
            "Rasa's event broker is not publishing: conversations will not reach "
            "profiles (see the 'EventBroker' warning in Rasa's log)"
        )
    return "publishing to the event stream"


def _actions() -> str:
    response = httpx.get(f"{get_settings().rasa.actions_url}/health", timeout=2.0)
    response.raise_for_status()
    return "ok"


@router.get("/health", response_model=Health)
def health(request: Request) -> JSONResponse:
    components = {
        "database": _check(_database),
        "redis": _check(_redis),
        "worker": _check(_worker),
        "campaigns_worker": _check(lambda: _worker(CAMPAIGNS_HEARTBEAT_SUFFIX, "60 s")),
        "index": _check(lambda: _index(request)),
        "rasa": _check(_rasa),
        "actions": _check(_actions),
        "conversation_events": _check(_conversation_events),
    }
    ok = all(c.status == "up" for c in components.values())
    body = Health(status="ok" if ok else "degraded", components=components)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
