"""The fault test: Rasa stops, shoppers write on WhatsApp, the channel worker is
restarted, Rasa comes back, and every message is answered once, in order."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from channels.worker import ChannelWorker
from tests.channels.conftest import post
from tests.channels.fakes import FakeGraph, FakeRasa
from tests.channels.payloads import WA_ID, wa_messages, wa_text

OTHER = "447700900123"


@contextmanager
def running(worker: ChannelWorker) -> Iterator[ChannelWorker]:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=10)


def answers_to(graph: FakeGraph, wa_id: str) -> list[str]:
    return [b["text"]["body"] for b in graph.sent() if b["to"] == wa_id]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_worker_rasa_down_messages_wait_and_are_answered_once_in_order(
    api: TestClient,
    make_worker: Callable[[Engine], ChannelWorker],
    store: Engine,
    rasa: FakeRasa,
    graph: FakeGraph,
) -> None:
    rasa.stop()
    written = [(WA_ID, "one"), (OTHER, "uno"), (WA_ID, "two"), (OTHER, "dos"),
               (WA_ID, "three")]  # fmt: skip
    with running(make_worker(store)):
        for n, (wa_id, text) in enumerate(written):
            payload = wa_messages(
                wa_text(text, f"wamid.X{n}", wa_id=wa_id), wa_id=wa_id
            )
            assert post(api, "whatsapp", payload).status_code == 200
            post(api, "whatsapp", payload)  # Meta's retry of the same delivery
        time.sleep(1.0)  # the worker tries Rasa and finds it down
    nothing_while_down = list(graph.requests)

    rasa.start()  # on the same address, as a restarted Rasa would be
    with running(make_worker(store)):  # a restarted worker picks up what waits
        answered = wait_for(lambda: len(graph.sent()) >= len(written))
        time.sleep(0.5)  # long enough for a second answer to show up

    assert nothing_while_down == []
    assert answered, graph.sent()
    assert answers_to(graph, WA_ID) == [
        "You said: one", "You said: two", "You said: three"
    ]  # fmt: skip
    assert answers_to(graph, OTHER) == ["You said: uno", "You said: dos"]
    assert [m["message"] for m in rasa.received] == [t for _w, t in written]
