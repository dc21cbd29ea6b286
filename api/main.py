"""Assembles the api: routes of every domain, error handlers, start-up."""

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session

from api import health
from assistant.vocabulary import VocabularyPublisher
from campaigns import api as campaigns_api
from catalog import api as catalog_api
from catalog import service as catalog
from catalog.models import Product
from channels import handover, messenger, web, whatsapp
from context import api as context_api
from core import db
from core.errors import install_error_handlers
from core.logging import configure_logging
from core.settings import get_settings
from events import api as events_api
from events import failed_api
from events.limits import TrackingBodyLimit
from imports import api as imports_api
from profiles import api as profiles_api
from profiles import matching_api
from recommender import api as recommender_api
from recommender.embeddings import Embedder
from recommender.service import Recommender
from segments import api as segments_api
from shop import api as shop_api

logger = logging.getLogger(__name__)


def build_recommender(*, progress: bool = False) -> Recommender:
    settings = get_settings().recommender
    recommender = Recommender(
        Embedder(settings.model_path, settings.batch_size), settings.cache_dir
    )
    with Session(db.get_engine()) as session:
        recommender.build(catalog.list_active(session), progress=progress)
    return recommender


def refresh_index(
    recommender: Recommender,
    *,
    popularity: bool,
    vocabulary: VocabularyPublisher | None = None,
) -> None:
    """Catalog changes into the index and, given a publisher (the api's own poll),
    into the running assistant's words."""
    with Session(db.get_engine()) as session:
        if recommender.refresh(session) and vocabulary is not None:
            publish_vocabulary(vocabulary, session, recommender.last_changed)
        if popularity:
            recommender.refresh_popularity(session)


def publish_vocabulary(
    publisher: VocabularyPublisher,
    session: Session,
    changed: list[Product] | None = None,
) -> None:
    """The running assistant's words follow the catalog (assistant.vocabulary); a
    failure to write them is logged and leaves the chat with the words it had."""
    try:
        if changed is None:
            publisher.publish(session)
        else:
            publisher.catalog_changed(session, changed)
    except Exception:
        logger.exception(
            "assistant vocabulary not published", extra={"path": str(publisher.path)}
        )


async def keep_index_fresh(
    recommender: Recommender, vocabulary: VocabularyPublisher
) -> None:
    """Catalog changes reach the index within ``refresh_seconds``; popularity is
    recounted every ``popularity_seconds``. A failed round is logged and retried."""
    settings = get_settings().recommender
    last_count = -math.inf
    while True:
        await asyncio.sleep(settings.refresh_seconds)
        due = time.monotonic() - last_count >= settings.popularity_seconds
        try:
            await run_in_threadpool(
                refresh_index, recommender, popularity=due, vocabulary=vocabulary
            )
        except Exception:
            logger.exception("index refresh failed; retrying")
            continue
        if due:
            last_count = time.monotonic()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.create_tables()
    app.state.recommender = recommender = build_recommender()
    # A catalog imported while the api was down reaches the assistant now.
    vocabulary = VocabularyPublisher(get_settings().rasa.vocabulary_path)
    with Session(db.get_engine()) as session:
        publish_vocabulary(vocabulary, session)
    refresher = asyncio.create_task(keep_index_fresh(recommender, vocabulary))
    try:
        yield
    finally:
        refresher.cancel()
        with suppress(asyncio.CancelledError):
            await refresher


def create_app(*, load_index: bool = True) -> FastAPI:
    app = FastAPI(
        title="Open CDP",
        version="0.1.0",
        summary="Customer data platform with a built-in shopping assistant",
        lifespan=lifespan if load_index else None,
    )
    install_error_handlers(app)
    app.add_middleware(TrackingBodyLimit)
    # Shops put the tracker on their own domain; nothing here relies on cookies, so
    # any origin may call with a write key or a token.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
    )
    app.include_router(health.router)
    app.include_router(events_api.router)
    app.include_router(failed_api.router)
    app.include_router(profiles_api.router)
    app.include_router(context_api.router)
    app.include_router(matching_api.router)
    app.include_router(segments_api.router)
    app.include_router(campaigns_api.router)
    app.include_router(imports_api.router)
    # Search before the catalog's /v1/products/{sku} so "search" is not taken for a sku.
    app.include_router(recommender_api.router)
    app.include_router(catalog_api.router)
    app.include_router(web.router)
    app.include_router(whatsapp.router)
    app.include_router(messenger.router)
    app.include_router(handover.router)
    app.include_router(shop_api.router)
    app.mount(
        "/static", StaticFiles(directory=Path(shop_api.__file__).parent / "static")
    )
    return app


def main() -> None:
    import uvicorn

    configure_logging()
    settings = get_settings()
    uvicorn.run(
        "api.main:create_app", factory=True, host=settings.api.host,
        port=settings.api.port, log_config=None,
    )  # fmt: skip


if __name__ == "__main__":
    main()
