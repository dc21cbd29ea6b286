"""The campaigns worker: on a clock, it tests the triggers of hybrid campaigns for
the profiles that events touched, starts and runs their journeys, and delivers
what they send. Run it as ``python -m campaigns.worker`` (``cdp demo`` does).

The events worker adds each profile it changed to a Redis set; this worker reads
a batch of the set and removes those ids only once the batch is evaluated, so a
crash in between evaluates them again rather than losing them. One worker runs
at a time: the journeys' unique keys and send ids keep a second one from writing
twice, but two would contend for the same rows.
"""

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from campaigns import delivery, journeys
from campaigns.definitions import CampaignFolder
from campaigns.service import get_folder
from core.db import get_engine
from core.redis import get_redis
from core.settings import get_settings
from recommender.service import Recommender

logger = logging.getLogger(__name__)
HEARTBEAT_SUFFIX = ":campaigns-heartbeat"
BATCH = 500


def touched_key() -> str:
    """The set of profiles to test, beside the event stream it comes from."""
    return get_settings().tracking.stream + ":campaigns-touched"


def note_touched(client: redis.Redis, profile_ids: set[str] | list[str]) -> None:
    """Called by the events worker once a batch is committed."""
    if profile_ids:
        client.sadd(touched_key(), *profile_ids)


@dataclass
class Tick:
    evaluated: int = 0
    started: int = 0
    moved: int = 0
    delivered: int = 0


class CampaignWorker:
    def __init__(
        self,
        engine: Engine,
        client: redis.Redis,
        *,
        folder: CampaignFolder | None = None,
        recommender: Callable[[], Recommender | None] | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.folder = folder or get_folder()
        self.recommender = recommender or _index_when_needed()
        self.running = True

    def tick(self, now: datetime | None = None) -> Tick:
        now = now or datetime.now(UTC)
        done = Tick()
        touched = sorted(
            m.decode() if isinstance(m, bytes) else m
            for m in self.client.srandmember(touched_key(), BATCH) or []
        )
        with Session(self.engine) as session:
            ids = sorted(set(touched) | set(journeys.due_watches(session, now=now)))
            done.evaluated = len(ids)
            done.started = journeys.evaluate(session, ids, now=now, folder=self.folder)
            if touched:
                self.client.srem(touched_key(), *touched)
            done.started += journeys.evaluate_catalog(
                session, now=now, folder=self.folder
            )
            done.started += journeys.sweep_audiences(
                session, now=now, folder=self.folder
            )
            done.moved = journeys.run_due(
                session, now=now, folder=self.folder, recommender=self.recommender
            )
            done.delivered = delivery.deliver_due(session, now=now, folder=self.folder)
        return done

    def run(self) -> None:
        every = get_settings().campaigns.tick_seconds
        logger.info(
            "campaigns worker started", extra={"folder": str(self.folder.folder)}
        )
        while self.running:
            beat = get_settings().tracking.stream + HEARTBEAT_SUFFIX
            self.client.set(beat, datetime.now(UTC).isoformat(), ex=60)
            started = time.monotonic()
            try:
                done = self.tick()
                if done.started or done.moved or done.delivered:
                    logger.info("campaigns tick", extra=done.__dict__)
            except (SQLAlchemyError, redis.RedisError) as exc:
                # The store or Redis is away: nothing was lost, try again later.
                logger.warning("campaigns tick failed", extra={"error": repr(exc)})
            except Exception:
                # A bug must not stop every campaign: logged, and the next tick
                # tries again (each step and send is its own transaction).
                logger.exception("campaigns tick failed")
            time.sleep(max(0.0, every - (time.monotonic() - started)))
        logger.info("campaigns worker stopped")

    def stop(self, *_args: object) -> None:
        self.running = False


def _index_when_needed() -> Callable[[], Recommender | None]:
    """The product index, built the first time a campaign shows recommended
    products (from the embeddings cache the api keeps), refreshed like the api's."""
    state: dict[str, object] = {}

    def get() -> Recommender | None:
        from api.main import build_recommender, refresh_index

        recommender = state.get("index")
        every = get_settings().recommender.refresh_seconds
        if recommender is None:
            recommender = state["index"] = build_recommender()
            state["at"] = time.monotonic()
        elif time.monotonic() - float(state["at"]) > every:  # type: ignore[arg-type]
            refresh_index(recommender, popularity=True)  # type: ignore[arg-type]
            state["at"] = time.monotonic()
        return recommender  # type: ignore[return-value]

    return get


def main() -> None:
    from core.db import create_tables
    from core.logging import configure_logging

    configure_logging()
    create_tables()
    worker = CampaignWorker(get_engine(), get_redis())
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()


if __name__ == "__main__":
    main()
